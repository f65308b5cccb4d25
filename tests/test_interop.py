"""`labkit import` and `labkit export --to label-studio` through the CLI in a subprocess: a CSV of
real photographs with labels (every bad row listed, nothing written until all are valid), a
Label Studio export fixture in the tool's published JSON format, and a round trip
export -> annotate (Label Studio's export format) -> import."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
from PIL import Image

from labkit.data import list_splits, load_split
from photos import make_items

FIXTURE = Path(__file__).parent / "fixtures" / "label_studio_export.json"


def labkit(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=300, env=env)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def by_id(ds) -> dict:
    return {row["id"]: row for row in ds}


def test_csv_import_validates_every_row(tmp_path):
    make_items(tmp_path / "items")
    files = lambda name: ",".join(f"items/{name}/{f}" for f in ("original.jpg", "A.png", "b.JPG", "C.png", "D.webp"))
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join([
        "id,original,A,B,C,D,answer,defects_A,defects_B,defects_C,defects_D,split",
        f"p1,{files('astronaut')},AC,,physical_shadow,,physical_shadow,train",
        f"p2,{files('chelsea')},,appearance_deformation,,appearance_deformation;extension_rationality,,test",
        f"p3,{files('coffee')},N,,,,,train",
        f"p4,{files('coffee')},AB,,physical_shadow,,,train",     # B accepted but tagged defective
        f"p5,{files('broken')},A,,x,x,x,train",                  # candidate B is not an image
        f"p6,{files('coffee')},ABCD,,,,,holdout",                # unknown split
    ]) + "\n")
    out = tmp_path / "ours"
    proc = labkit("import", "--from", "csv", str(csv), "--out", str(out))
    assert proc.returncode == 1
    for sid, problem in (("p4", "inconsistent with candidate_defects"), ("p5", "candidate B is unreadable"),
                         ("p6", "unknown split 'holdout'")):
        assert f"sample '{sid}'" in proc.stderr and problem in proc.stderr, proc.stderr
    assert "3 invalid row(s); nothing written" in proc.stderr and not (out.exists() and list_splits(out))

    proc = labkit("import", "--from", "csv", str(csv), "--out", str(out), "--skip-invalid")
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 sample(s)" in proc.stdout and list_splits(out) == ["train", "test"]
    train, test = by_id(load_split(out, "train")), by_id(load_split(out, "test"))
    assert set(train) == {"p1", "p3"} and set(test) == {"p2"}
    assert train["p1"]["answer"] == "AC" and train["p1"]["dimension"] == "physical_shadow"
    assert train["p1"]["candidate_defects"] == [[], ["physical_shadow"], [], ["physical_shadow"]]
    assert train["p3"]["answer"] == "N" and train["p3"]["candidate_defects"] is None
    # Only tags given: the answer is the untagged letters; two dimensions named: no single dimension.
    assert test["p2"]["answer"] == "BD" and test["p2"]["dimension"] is None
    assert {r["source"] for r in [*train.values(), *test.values()]} == {"user"}
    # The images are the files, bit for bit in pixels (PNG lossless; JPEG bytes kept as they are).
    assert np.array_equal(pixels(train["p1"]["candidates"][0]), pixels(Image.open(tmp_path / "items/astronaut/A.png")))
    assert np.array_equal(pixels(train["p1"]["original"]), pixels(Image.open(tmp_path / "items/astronaut/original.jpg")))
    assert json.loads(train["p1"]["meta"])["row"] == 1
    # Importing into a folder that already holds these splits is refused (nothing is overwritten).
    proc = labkit("import", "--from", "csv", str(csv), "--out", str(out), "--skip-invalid")
    assert proc.returncode == 1 and "already has split(s) test, train" in proc.stderr


def write_fixture_images(root: Path) -> dict:
    colours = {"item1": ("white", "red", "blue", "green", "gray"), "item2": ("black", "orange", "purple", "teal", "navy")}
    for item, cs in colours.items():
        (root / "shop" / item).mkdir(parents=True)
        for role, c in zip(("original", "A", "B", "C", "D"), cs):
            Image.new("RGB", (24, 24), c).save(root / "shop" / item / f"{role}.png")
    return colours


def test_label_studio_export_fixture_imports(tmp_path):
    # A JSON export in Label Studio's published format (tasks with data, annotations[].result[]
    # of choices regions, a cancelled annotation), images in local-files storage.
    root = tmp_path / "ls-root"
    write_fixture_images(root)
    proc = labkit("import", "--from", "label-studio", str(FIXTURE), "--out", str(tmp_path / "ds"), "--document-root", str(root))
    assert proc.returncode == 0, proc.stderr
    rows = by_id(load_split(tmp_path / "ds", "train"))
    assert rows["shop-0001"]["answer"] == "AC" and rows["shop-0001"]["dimension"] == "physical_shadow"
    assert rows["shop-0001"]["candidate_defects"] == [[], ["physical_shadow"], [], ["physical_shadow"]]
    # The cancelled later annotation is ignored.
    assert rows["shop-0002"]["answer"] == "N" and rows["shop-0002"]["dimension"] is None
    assert rows["shop-0002"]["candidate_defects"][1] == ["appearance_deformation", "extension_rationality"]
    assert pixels(rows["shop-0002"]["candidates"][1])[0, 0].tolist() == [128, 0, 128]  # purple B
    assert json.loads(rows["shop-0001"]["meta"])["label_studio_task"] == 101
    # Without the document root the images are not found: a clear message per task.
    proc = labkit("import", "--from", "label-studio", str(FIXTURE), "--out", str(tmp_path / "ds2"))
    assert proc.returncode == 1 and "sample 'shop-0001'" in proc.stderr and "shop/item1/original.png" in proc.stderr


def annotate(task: dict, task_id: int, result: list[dict], when: str, cancelled: bool = False) -> dict:
    """An annotation as Label Studio exports it."""
    return {"id": task_id * 10 + len(task.get("annotations", [])), "completed_by": 1,
            "result": [dict(r, origin="manual", id=f"r{task_id}{i}") for i, r in enumerate(result)],
            "was_cancelled": cancelled, "ground_truth": False, "created_at": when, "updated_at": when,
            "lead_time": 5.0, "task": task_id, "project": 1}


def choices(name, to, values):
    return {"from_name": name, "to_name": to, "type": "choices", "value": {"choices": values}}


def test_label_studio_round_trip(handmade_dataset, tmp_path):
    proc = labkit("export", "--to", "label-studio", str(handmade_dataset), "--split", "train",
                  "--out", str(tmp_path / "ls" / "tasks.json"))
    assert proc.returncode == 0, proc.stderr
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    original = by_id(load_split(handmade_dataset, "train"))
    assert [t["data"]["sample_id"] for t in tasks] == list(original)
    # Images as local-file URLs relative to the document root (the folder of tasks.json).
    for t in tasks:
        for role in ("original", "A", "B", "C", "D"):
            url = t["data"][role]
            assert url.startswith("/data/local-files/?d=tasks_images/")
            assert (tmp_path / "ls" / parse_qs(urlparse(url).query)["d"][0]).is_file()
    # The labelling config: valid XML whose controls point at the task's images.
    config = ET.parse(tmp_path / "ls" / "label_config.xml").getroot()
    images = {el.get("name"): el.get("value") for el in config.iter("Image")}
    assert images == {r: f"${r}" for r in ("original", "A", "B", "C", "D")}
    controls = {el.get("name"): el for el in config.iter("Choices")}
    assert set(controls) == {"acceptable", "defects_A", "defects_B", "defects_C", "defects_D", "dimension"}
    assert all(el.get("toName") in images for el in controls.values())
    assert [c.get("value") for c in controls["acceptable"]] == ["A", "B", "C", "D", "N"]
    # The existing labels travel as predictions, ready to confirm.
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == list(original["s0000"]["answer"])

    # What annotators did, exported by Label Studio: accept predictions (s0001), relabel (s0000),
    # a later cancelled annotation (s0002: ignored), two annotations (s0003: the later wins).
    for n, task in enumerate(tasks, start=1):
        task["id"] = n
        task["annotations"] = [annotate(task, n, task["predictions"][0]["result"], "2025-05-01T10:00:00Z")]
    tasks[0]["annotations"] = [annotate(tasks[0], 1, [choices("acceptable", "original", ["B"]),
                                                     choices("defects_A", "A", ["placement_layout"]),
                                                     choices("defects_C", "C", ["placement_layout"]),
                                                     choices("defects_D", "D", ["placement_layout"])], "2025-05-01T11:00:00Z")]
    tasks[2]["annotations"].append(annotate(tasks[2], 3, [], "2025-05-02T09:00:00Z", cancelled=True))
    tasks[3]["annotations"].insert(0, annotate(tasks[3], 4, [choices("acceptable", "original", ["N"])], "2025-05-03T09:00:00Z"))
    export = tmp_path / "ls" / "project-1-at-2025-05-03.json"
    export.write_text(json.dumps(tasks))
    proc = labkit("import", "--from", "label-studio", str(export), "--out", str(tmp_path / "back"))
    assert proc.returncode == 0, proc.stderr
    back = by_id(load_split(tmp_path / "back", "train"))
    assert list(back) == list(original)
    assert back["s0000"]["answer"] == "B" and back["s0000"]["dimension"] == "placement_layout"
    assert back["s0000"]["candidate_defects"] == [["placement_layout"], [], ["placement_layout"], ["placement_layout"]]
    assert back["s0003"]["answer"] == "N" and back["s0003"]["candidate_defects"] is None
    for sid in ("s0001", "s0002"):
        for key in ("answer", "dimension", "candidate_defects"):
            assert back[sid][key] == original[sid][key], (sid, key)
    for sid in original:
        for a, b in zip([original[sid]["original"], *original[sid]["candidates"]], [back[sid]["original"], *back[sid]["candidates"]]):
            assert np.array_equal(pixels(a), pixels(b))
        assert back[sid]["source"] == "user"

    # A task nobody annotated has no answer: listed, and nothing written.
    del tasks[1]["annotations"]
    export.write_text(json.dumps(tasks))
    shutil.rmtree(tmp_path / "back")
    proc = labkit("import", "--from", "label-studio", str(export), "--out", str(tmp_path / "back"))
    assert proc.returncode == 1 and "sample 's0001': split 'train' needs an answer" in proc.stderr


def test_folder_and_jsonl_imports(tmp_path):
    # Item folders with labels.jsonl beside them; and the same labels as a JSONL manifest with paths.
    items = make_items(tmp_path / "items", broken=False)
    labels = [{"id": "astronaut", "candidate_defects": [[], [], ["extension_rationality"], []], "split": "test"},
              {"id": "chelsea", "answer": "N"},
              {"id": "coffee", "answer": "ABCD", "caption": "a cup of coffee"}]
    (items / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    proc = labkit("import", "--from", "folder", str(items), "--out", str(tmp_path / "f"), "--name", "shop-photos")
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 sample(s)" in proc.stdout
    test, train = by_id(load_split(tmp_path / "f", "test")), by_id(load_split(tmp_path / "f", "train"))
    assert test["astronaut"]["answer"] == "ABD" and test["astronaut"]["dimension"] == "extension_rationality"
    assert train["chelsea"]["answer"] == "N" and train["coffee"]["dimension"] == "normal"
    assert train["coffee"]["caption"] == "a cup of coffee"
    assert json.loads((tmp_path / "f" / "dataset.json").read_text())["name"] == "shop-photos"
    manifest = tmp_path / "labels.jsonl"
    paths = {r: f"items/coffee/{f}" for r, f in zip(("original", "A", "B", "C", "D"), ("original.jpg", "A.png", "b.JPG", "C.png", "D.webp"))}
    manifest.write_text(json.dumps({"id": "c1", **paths, "answer": "AD", "defects_B": "physical_shadow",
                                    "defects_C": "physical_shadow"}) + "\n" + json.dumps({"id": "c2", **paths, "answer": "Q"}) + "\n")
    proc = labkit("import", "--from", "jsonl", str(manifest), "--out", str(tmp_path / "j"))
    assert proc.returncode == 1 and "sample 'c2'" in proc.stderr and "'Q'" in proc.stderr
