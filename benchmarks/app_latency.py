"""Benchmark: how fast the app answers a screening, end to end through HTTP (gradio_client).

Starts the app on 127.0.0.1 (a free port) with the ``small`` InternVL screener, uploads an
original and four candidates, and times the ``/screen`` event:

- time to first reasoning token: from submitting the job to the first streamed output with
  non-empty reasoning;
- total: from submitting to the final output (parsed answer);
- first update: from submitting to the handler's first (empty) output, i.e. what uploading the
  five files and Gradio's queue cost before the model starts.

*Cold* is the first request after the app started (the model is loaded at start, so this is
the first generate call: lazy initialisation, allocator warm-up); *warm* is the median of
``--repeats`` later requests. The same request is also timed in-process (the handler alone,
`labkit.app.handlers.screen_stream`) to show what HTTP and Gradio's queue add. The app's start time
(model load + server start) is printed too.

Run: ``python benchmarks/app_latency.py [--model DIR] [--repeats 5] [--max-new-tokens 256]``
(without ``--model`` it builds the ``small`` screener in a temporary folder, seed 0; the
images are a synthetic test sample from `labkit.synth`, seed 0).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _images(tmp: Path) -> list[str]:
    """Five PNG files: one synthetic sample (original + A-D), or solid colours without the generator."""
    from PIL import Image

    try:
        from labkit.conversions import sample_images
        from labkit.data import load_split
        from labkit.synth import make_dataset

        make_dataset(tmp / "synth", test=1, size=64, seed=0, workers=1)
        images = sample_images(load_split(tmp / "synth", "test")[0])
    except ImportError:
        images = [Image.new("RGB", (64, 64), c) for c in ("white", "red", "blue", "green", "gray")]
    paths = []
    for i, im in enumerate(images):
        paths.append(str(tmp / f"img{i}.png"))
        im.save(paths[-1])
    return paths


def time_http(client, files, form: str) -> tuple[float, float, float, int]:
    """Seconds to the first streamed update (uploads + queue: the handler has started), to the
    first non-empty reasoning, to the end; and the response's characters, for one /screen."""
    t0 = time.perf_counter()
    job = client.submit(*files, form, api_name="/screen")
    update = first = None
    for out in job:
        now = time.perf_counter() - t0
        update = now if update is None else update
        if first is None and out[0]:
            first = now
    final = job.result()
    total = time.perf_counter() - t0
    return (first if first is not None else total), total, (update if update is not None else total), len(final[0])


def time_inprocess(screener, images, form: str) -> tuple[float, float]:
    from labkit.app.handlers import screen_stream

    t0 = time.perf_counter()
    first = None
    for step in screen_stream(screener, images, form):
        if first is None and step.reasoning:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return (first if first is not None else total), total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: build the small screener, seed 0)")
    parser.add_argument("--repeats", type=int, default=5, help="warm requests (median reported)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="reasoning length limit")
    parser.add_argument("--form", choices=("cot", "direct"), default="cot", help="prompt form")
    args = parser.parse_args(argv)

    from gradio_client import Client, handle_file

    from labkit.app.handlers import Screener, collect_images
    from labkit.app.main import AppConfig, serve

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if not model:
            from labkit.models import build_model

            t = time.perf_counter()
            model = str(build_model("internvl", "small", tmp / "small-internvl", seed=0))
            print(f"built the small screener in {time.perf_counter() - t:.1f} s")
        paths = _images(tmp)

        t = time.perf_counter()
        demo = serve(AppConfig(model=model, store=str(tmp / "store.sqlite"), port=0,
                               max_new_tokens=args.max_new_tokens, prefill_cot=False), block=False)
        start_s = time.perf_counter() - t
        try:
            client = Client(demo.local_url, verbose=False, httpx_kwargs={"timeout": 120})
            files = [handle_file(p) for p in paths]
            cold = time_http(client, files, args.form)
            warm = [time_http(client, files, args.form) for _ in range(args.repeats)]
        finally:
            demo.close()

        screener = Screener.load(model, max_new_tokens=args.max_new_tokens)
        images = collect_images(*paths)
        cold_ip = time_inprocess(screener, images, args.form)
        warm_ip = [time_inprocess(screener, images, args.form) for _ in range(args.repeats)]

    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    print(f"\napp latency, model {Path(model).name}, prompt {args.form}, max_new_tokens {args.max_new_tokens}, "
          f"{os.cpu_count()} CPU(s); app start (model load + server) {start_s:.2f} s")
    print(f"{'':22}{'first update (s)':>17}{'first token (s)':>16}{'total (s)':>12}")
    print(f"{'HTTP cold':22}{cold[2]:>17.3f}{cold[0]:>16.3f}{cold[1]:>12.3f}")
    print(f"{'HTTP warm (median)':22}{med(warm, 2):>17.3f}{med(warm, 0):>16.3f}{med(warm, 1):>12.3f}")
    print(f"{'in-process cold':22}{'-':>17}{cold_ip[0]:>16.3f}{cold_ip[1]:>12.3f}")
    print(f"{'in-process warm':22}{'-':>17}{med(warm_ip, 0):>16.3f}{med(warm_ip, 1):>12.3f}")
    print("first update = five uploads + Gradio's queue until the handler's first (empty) output")
    print(f"response length {cold[3]} characters; HTTP/in-process total (warm): "
          f"{med(warm, 1) / med(warm_ip, 1):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
