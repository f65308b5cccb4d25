"""`labkit validate` lists every bad sample (not only the first) and exits non-zero; `labkit info`
refuses invalid data (or warns with --force) and `labkit show` warns, through the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import make_sample
from labkit.data import features, normalise_sample, save_split


def labkit(*args):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=300)


def write_raw(rows, root, split):
    """Write rows as a split file without the validation save_split does (to plant faults)."""
    from datasets import Dataset

    root.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features()).to_parquet(str(root / f"{split}.parquet"))


def faulty_dataset(tmp_path):
    """train: 6 samples, three of them bad in three different ways; test: 2 valid samples."""
    rows = [normalise_sample(make_sample(i, a)) for i, a in enumerate(["AC", "B", "N", "ABCD", "D", "BC"])]
    rows[1]["candidates"][2] = {"bytes": b"\x89PNG truncated", "path": None}   # unreadable image
    rows[3]["answer"] = "AC"                                                      # contradicts its defect tags
    rows[5]["dimension"] = "lighting"                                             # not a dimension
    root = tmp_path / "bad"
    write_raw(rows, root, "train")
    save_split([make_sample(10 + i, a, split="test") for i, a in enumerate(["A", "CD"])], root, "test")
    return root


def test_validate_lists_all_three_faults(tmp_path):
    root = faulty_dataset(tmp_path)
    proc = labkit("validate", str(root))
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert lines[:3] == [
        "train: sample 's0001': candidate C is unreadable (UnidentifiedImageError: cannot identify image file "
        + lines[0].split("cannot identify image file ", 1)[1],
        "train: sample 's0003': answer 'AC' is inconsistent with candidate_defects (defect-free candidates give 'ABCD')",
        "train: sample 's0005': unknown dimension 'lighting'; expected one of normal, appearance_deformation, "
        "physical_shadow, placement_layout, extension_rationality",
    ]
    assert lines[3] == f"{root}: 3 problem(s) in 3 sample(s) or file(s)"
    data = json.loads(labkit("validate", str(root), "--json").stdout)
    assert [(p["split"], p["id"]) for p in data] == [("train", "s0001"), ("train", "s0003"), ("train", "s0005")]
    # Schema-only check (images not decoded) misses the unreadable image and finds the other two.
    quick = json.loads(labkit("validate", str(root), "--json", "--no-images").stdout)
    assert [p["id"] for p in quick] == ["s0003", "s0005"]


def test_validate_finds_duplicates_across_splits_and_passes_clean_data(tmp_path, handmade_dataset):
    proc = labkit("validate", str(handmade_dataset))
    assert proc.returncode == 0 and "all samples valid (train 4, test 5)" in proc.stdout
    root = tmp_path / "dup"
    save_split([make_sample(i, "A") for i in range(3)], root, "train")
    save_split([make_sample(2, "B", split="test")], root, "test")  # s0002 in both splits: a leak
    proc = labkit("validate", str(root))
    assert proc.returncode == 1 and "test: sample 's0002': duplicate id (also in split 'train')" in proc.stdout


def test_info_refuses_and_show_warns_on_invalid_data(tmp_path):
    root = faulty_dataset(tmp_path)
    proc = labkit("info", str(root))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "sample 's0003'" in proc.stderr and "3 invalid sample(s)" in proc.stderr and "--force" in proc.stderr
    proc = labkit("info", str(root), "--force")
    assert proc.returncode == 0 and "train" in proc.stdout and "warning: 3 invalid sample(s)" in proc.stderr
    # show: a sample with inconsistent labels is drawn with a warning; one with a broken image is refused.
    proc = labkit("show", str(root), "--id", "s0003", "--out", str(tmp_path / "s3.png"))
    assert proc.returncode == 0 and (tmp_path / "s3.png").exists()
    assert "warning: invalid sample: sample 's0003': answer 'AC' is inconsistent" in proc.stderr
    proc = labkit("show", str(root), "--id", "s0001", "--out", str(tmp_path / "s1.png"))
    assert proc.returncode == 1 and "candidate C is unreadable" in proc.stderr and not (tmp_path / "s1.png").exists()
