"""`labkit screen` through the CLI in a subprocess: a folder of real photographs (scikit-image's
sample images) arranged as items, with one unreadable file and one missing file; batches,
resume, the gallery, a manifest, a dataset split, and a judge behind a real chat server."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from chat_server import ChatServer, images_of
from labkit.metrics import parse_answer
from photos import PHOTOS, make_items



def labkit(*args, env=None):
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=300, env=full)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_screen_a_folder_of_photos_then_resume(tiny_internvl, tmp_path):
    items = make_items(tmp_path / "items")
    out = tmp_path / "out"
    proc = labkit("screen", str(items), "--model", str(tiny_internvl), "--out", str(out), "--batch-size", "2",
                  "--max-new-tokens", "8", "--image-size", "32")
    assert proc.returncode == 0, proc.stderr
    assert "5 items (folder): 3 screened, 0 resumed, 2 skipped" in proc.stdout
    # A clear message per unreadable or incomplete item, as it happens and in skipped.jsonl.
    assert re.search(r"skipped broken: candidate B \(.*b\.JPG\) is unreadable", proc.stderr), proc.stderr
    assert "skipped missing: no file for D" in proc.stderr
    skipped = {s["id"]: s["problem"] for s in read_jsonl(out / "skipped.jsonl")}
    assert set(skipped) == {"broken", "missing"}
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == list(PHOTOS)  # input order (sorted folder names)
    for r in rows:
        assert isinstance(r["response"], str)
        assert r["answer"] == parse_answer(r["response"])
        assert set(r["verdicts"]) == {"A", "B", "C", "D"} and len(r["p_ok"]) == 4
        assert r["seconds"] > 0 and r["batch_seconds"] >= r["seconds"]
        assert r["files"]["B"].endswith("b.JPG") and r["files"]["D"].endswith("D.webp")
    gallery = (out / "gallery.html").read_text()
    assert gallery.count("<div class='item'") == 5 and gallery.count("<details>") == 3
    assert gallery.count("<img") == 15 and "skipped: candidate B" in gallery
    for name in PHOTOS:
        thumbs = sorted(p.name for p in (out / "thumbs" / name).iterdir())
        assert thumbs == ["A.jpg", "B.jpg", "C.jpg", "D.jpg", "original.jpg"]
        assert max(Image.open(out / "thumbs" / name / "original.jpg").size) <= 160

    # Resume: drop one finished item, fix the broken one; only those two are screened again.
    kept = [r for r in rows if r["id"] != "chelsea"]
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (items / "broken" / "b.JPG").write_bytes((items / "astronaut" / "b.JPG").read_bytes())
    proc = labkit("screen", str(items), "--model", str(tiny_internvl), "--out", str(out), "--batch-size", "2",
                  "--max-new-tokens", "8", "--image-size", "32", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "5 items (folder): 2 screened, 2 resumed, 1 skipped" in proc.stdout
    again = {r["id"]: r for r in read_jsonl(out / "predictions.jsonl")}
    assert set(again) == {"astronaut", "coffee", "chelsea", "broken"}
    assert again["astronaut"] == rows[0]  # finished items are not redone
    # Other settings in the same folder would mix runs: refused.
    proc = labkit("screen", str(items), "--model", str(tiny_internvl), "--out", str(out), "--max-new-tokens", "9")
    assert proc.returncode == 1 and "other settings" in proc.stderr


def test_screen_through_a_judge_marks_accepted_and_rejected(tmp_path):
    # --judge: every readable item goes to an OpenAI-compatible server once, with the five
    # images; the gallery frames A and C green and B and D red; a rerun sends nothing.
    items = make_items(tmp_path / "items")
    reply = "<think>A: ok. B: no, wrong shadow. C: ok. D: no, bad placement.</think><answer>AC</answer>"
    env = {"LABKIT_JUDGE_CACHE": str(tmp_path / "cache")}
    with ChatServer(replies=[reply]) as server:
        args = ("screen", str(items), "--judge", "openai:test-vlm", "--base-url", server.url, "--out", str(tmp_path / "out"))
        proc = labkit(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        assert server.count == 3 and all(len(images_of(body)) == 5 for body in server.requests)
        assert "3 with an acceptable candidate" in proc.stdout
        rows = read_jsonl(tmp_path / "out" / "predictions.jsonl")
        assert all(r["answer"] == "AC" and r["accepted"] == ["A", "C"] and r["rejected"] == ["B", "D"] for r in rows)
        assert rows[0]["verdicts"] == {"A": True, "B": False, "C": True, "D": False}
        gallery = (tmp_path / "out" / "gallery.html").read_text()
        assert gallery.count("class='accepted'") == 6 and gallery.count("class='rejected'") == 6
        proc = labkit(*args, env=env)
        assert proc.returncode == 0 and "0 screened, 3 resumed" in proc.stdout and server.count == 3


def test_screen_a_manifest_and_a_dataset_split(tiny_internvl, handmade_dataset, tmp_path):
    items = make_items(tmp_path / "items")
    manifest = tmp_path / "manifest.csv"
    lines = ["id,original,A,B,C,D"]
    for name in ("astronaut", "coffee"):
        lines.append(",".join([f"photo-{name}", *(f"items/{name}/{f}" for f in ("original.jpg", "A.png", "b.JPG", "C.png", "D.webp"))]))
    lines.append("photo-gone,items/coffee/original.jpg,items/coffee/A.png,items/coffee/b.JPG,items/coffee/C.png,nowhere.png")
    manifest.write_text("\n".join(lines) + "\n")
    proc = labkit("screen", str(manifest), "--model", str(tiny_internvl), "--out", str(tmp_path / "m"),
                  "--max-new-tokens", "4", "--image-size", "32", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "3 items (manifest): 2 screened, 0 resumed, 1 skipped" in proc.stdout
    assert "skipped photo-gone: missing file for D (nowhere.png)" in proc.stderr
    # A dataset split: labels (when present) travel along for comparison.
    proc = labkit("screen", str(handmade_dataset), "--split", "test", "--model", str(tiny_internvl),
                  "--out", str(tmp_path / "d"), "--max-new-tokens", "4", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(tmp_path / "d" / "predictions.jsonl")
    assert [r["label"] for r in rows] == ["A", "BD", "N", "C", "ACD"] and rows[0]["files"] is None
