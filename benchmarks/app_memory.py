"""Benchmark: server memory for a huge upload (a 12000x12000 PNG of a few hundred KB).

Such a file passes the upload size limit and PIL's decompression-bomb check; decoded whole it is
576 MB (PIL keeps RGB as 4 bytes a pixel) before any copy. The app decodes uploads over its pixel
cap strip by strip (`labkit.app.images.open_capped`), so the server should grow by far less (goal:
at most +300 MB for one such upload).

Two measurements, side by side in one run:

1. **Decoder alone**, each in a fresh process: peak RSS growth (``VmHWM``) of decoding the
   file whole (`labkit.data.open_image`, what the app did before) and capped (`open_capped`).
2. **Through the app**: the app runs in its own process (the tiny InternVL screener unless
   ``--model``); after a warm-up screening with small images, one ``/screen`` with the huge PNG
   as candidate D, then two at once, through `gradio_client`. Printed: the server's peak RSS
   (``VmHWM``) growth over the warm-up peak, and its RSS afterwards.

Run: ``python benchmarks/app_memory.py [--model DIR] [--side 12000] [--max-pixels 1048576]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024

DECODE = """
import sys, json
from pathlib import Path
from labkit.data import open_image
from labkit.app.images import open_capped

def peak_mb():  # VmHWM: the process's peak resident memory
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
    return int(line.split()[1]) / 1024

before = peak_mb()
img = open_image(sys.argv[2]) if sys.argv[1] == "whole" else open_capped(sys.argv[2], int(sys.argv[3]))
print(json.dumps({"size": img.size, "peak_growth_mb": peak_mb() - before}))
"""

SERVE = """
import sys
from labkit.app.main import AppConfig, serve
serve(AppConfig(model=sys.argv[1], store=sys.argv[2], port=int(sys.argv[3]), max_new_tokens=16,
                prefill_cot=False, max_pixels=int(sys.argv[4])), block=True)
"""


def huge_png(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` RGB PNG that compresses to a few hundred KB (flat colours and shapes)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (side, side), (235, 235, 230))
    draw = ImageDraw.Draw(img)
    draw.ellipse((side // 6, side // 6, side * 5 // 6, side * 5 // 6), fill=(200, 40, 40))
    draw.rectangle((side // 3, side // 3, side // 2, side * 2 // 3), fill=(30, 60, 160))
    img.save(path)
    return path


def proc_mb(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def decode_alone(path: Path, max_pixels: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rows = {}
    for how in ("whole", "capped"):
        r = subprocess.run([sys.executable, "-c", DECODE, how, str(path), str(max_pixels)], capture_output=True,
                           text=True, env=env, check=True, cwd=REPO)
        rows[how] = json.loads(r.stdout.strip().splitlines()[-1])
    return rows


def through_app(model: str, huge: Path, small: list[str], max_pixels: int, tmp: Path) -> dict:
    from gradio_client import Client, handle_file

    from labkit.app.main import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-c", SERVE, model, str(tmp / "store.sqlite"), str(port),
                               str(max_pixels)], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(600):
            try:
                client = Client(url, verbose=False, httpx_kwargs={"timeout": 600})
                break
            except Exception:  # not up yet
                if server.poll() is not None:
                    raise RuntimeError(server.stderr.read().decode()[-2000:])
                time.sleep(0.5)
        files = [handle_file(p) for p in small]
        client.predict(*files, "direct", api_name="/screen")  # warm-up: model, Gradio, allocator
        warm = proc_mb(server.pid)
        t = time.perf_counter()
        out = client.predict(*files[:4], handle_file(str(huge)), "direct", api_name="/screen")
        one_s = time.perf_counter() - t
        one = proc_mb(server.pid)

        def screen(results):
            c = Client(url, verbose=False, httpx_kwargs={"timeout": 600})
            results.append(c.predict(*files[:4], handle_file(str(huge)), "direct", api_name="/screen")[6])

        results: list[str] = []
        threads = [threading.Thread(target=screen, args=(results,)) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        two = proc_mb(server.pid)
        return {"warm": warm, "one": one, "two": two, "status": out[6], "one_s": one_s,
                "two_ok": sum(r.startswith("Done in") for r in results)}
    finally:
        server.terminate()
        server.wait(timeout=60)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: a tiny InternVL built in a temporary folder, seed 0)")
    ap.add_argument("--side", type=int, default=12000, help="side of the huge square PNG")
    ap.add_argument("--max-pixels", type=int, default=1024 * 1024, help="the app's pixel cap per image")
    args = ap.parse_args(argv)
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="app-memory-") as tmp:
        tmp = Path(tmp)
        model = args.model
        if not model:
            from labkit.models import build_model

            model = str(build_model("internvl", "tiny", tmp / "tiny-internvl", seed=0))
        huge = huge_png(tmp / "huge.png", args.side)
        small = []
        for i, colour in enumerate(("white", "red", "blue", "green", "gray")):
            small.append(str(tmp / f"s{i}.png"))
            Image.new("RGB", (64, 64), colour).save(small[-1])
        print(f"huge upload: {args.side}x{args.side} PNG, {huge.stat().st_size / 1024:.0f} KB; "
              f"pixel cap {args.max_pixels:,}")
        dec = decode_alone(huge, args.max_pixels)
        print("\ndecoder alone (fresh process each; peak RSS growth):")
        for how, row in dec.items():
            print(f"  {how:>7}: {row['peak_growth_mb']:8.1f} MB -> {row['size'][0]}x{row['size'][1]}")
        ratio = dec["whole"]["peak_growth_mb"] / max(dec["capped"]["peak_growth_mb"], 1.0)
        print(f"  whole / capped: {ratio:.1f}x")
        app = through_app(model, huge, small, args.max_pixels, tmp)
        print("\nthrough the app (server process, gradio_client /screen):")
        print(f"  after warm-up:      peak {app['warm']['VmHWM']:8.1f} MB, rss {app['warm']['VmRSS']:8.1f} MB")
        print(f"  one huge upload:    peak {app['one']['VmHWM']:8.1f} MB (+{app['one']['VmHWM'] - app['warm']['VmHWM']:.1f}),"
              f" rss {app['one']['VmRSS']:8.1f} MB, {app['one_s']:.1f} s")
        print(f"  two at once:        peak {app['two']['VmHWM']:8.1f} MB (+{app['two']['VmHWM'] - app['warm']['VmHWM']:.1f}),"
              f" rss {app['two']['VmRSS']:8.1f} MB, {app['two_ok']}/2 done")
        print(f"  status: {app['status']}")
        growth = app["two"]["VmHWM"] - app["warm"]["VmHWM"]
        print(f"\ngoal <= +300 MB per huge upload: {'met' if growth <= 300 else 'NOT met'} (+{growth:.1f} MB peak)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
