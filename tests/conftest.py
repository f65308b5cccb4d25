"""Shared fixtures. Heavy ones are session-scoped and built once per test run.

Fixtures that need a later stage import it lazily, so a missing stage fails only
the tests that use it.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import pytest
from PIL import Image


def solid(color, size=32):
    return Image.new("RGB", (size, size), color)


def make_sample(i: int = 0, acceptable: str = "AC", split: str = "train", dimension: str = "physical_shadow", **kw) -> dict:
    """A hand-made sample in the schema (solid-colour images) whose acceptable letters are
    ``acceptable``; keyword arguments override any field afterwards (e.g. a wrong answer)."""
    answer = acceptable
    from labkit.metrics import LETTERS

    defects = [[] if letter in answer else [dimension if dimension != "normal" else "appearance_deformation"] for letter in LETTERS]
    sample = dict(
        id=f"s{i:04d}",
        original=solid("white"),
        candidates=[solid(c) for c in ("red", "blue", "green", "gray")],
        answer=answer,
        dimension=dimension,
        candidate_defects=defects,
        caption="",
        cot="",
        split=split,
        source="synthetic",
        meta={"i": i},
    )
    sample.update(kw)
    return sample


@pytest.fixture
def handmade_dataset(tmp_path):
    """A dataset folder with train (4) and test (5) splits of solid-colour samples."""
    from labkit.data import save_split

    answers = ["AC", "B", "N", "ABCD"]
    save_split([make_sample(i, a) for i, a in enumerate(answers)], tmp_path / "ds", "train")
    dims = ["normal", "appearance_deformation", "physical_shadow", "placement_layout", "extension_rationality"]
    test_answers = ["A", "BD", "N", "C", "ACD"]
    save_split(
        [make_sample(10 + i, a, split="test", dimension=d) for i, (a, d) in enumerate(zip(test_answers, dims))],
        tmp_path / "ds", "test",
    )
    return tmp_path / "ds"


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """A small procedural dataset (labkit.synth): train 24, test 20, pseudo_label 8, exploration 4, 64 px."""
    from labkit.synth import make_dataset

    out = tmp_path_factory.mktemp("synth") / "ds"
    make_dataset(out, train=24, test=20, pseudo=8, exploration=4, size=64, seed=0, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_internvl(tmp_path_factory):
    """A tiny random InternVL screener (labkit.models.build_model), built once."""
    from labkit.models import build_model

    return build_model("internvl", "tiny", tmp_path_factory.mktemp("models") / "tiny-internvl", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    """A tiny random Qwen2.5-VL screener (labkit.models.build_model), built once."""
    from labkit.models import build_model

    return build_model("qwen2_5_vl", "tiny", tmp_path_factory.mktemp("models") / "tiny-qwen", seed=0)
