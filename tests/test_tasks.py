"""`labkit.tasks`: the screening and multiple-choice tasks behind the one evaluation loop.

`task_for` picks the task from the folder; the MC task refuses judges and screening rewards,
and an MC evaluation records absolute paths, so a rerun from another working directory resumes.
"""
from __future__ import annotations

import json
import os

import pytest

from labkit.mc import data as mc_data
from labkit.evaluate import evaluate, evaluate_mc
from labkit.mc.synth import write_synthetic
from labkit.tasks import MCTask, ScreenTask, task_for


@pytest.fixture(scope="module")
def mc_folder(tmp_path_factory):
    """A prepared BLINK stand-in (labkit.mc.synth): 8 train and 8 test items, two categories."""
    root = tmp_path_factory.mktemp("mc")
    mc_data.prepare("blink", write_synthetic("blink", root / "src", n=16, seed=1), root / "prep", seed=0)
    return root / "prep"


def test_task_for_picks_the_task_and_its_rules(mc_folder, handmade_dataset):
    screen = task_for(handmade_dataset, form="direct", layout="grid", image_size=None)
    assert isinstance(screen, ScreenTask) and screen.conv.form == "direct" and screen.conv.layout == "grid"
    assert screen.conv.variant == "train" and screen.judges and screen.verdicts
    screen.check_rewards(["accuracy", "format"], "recipe")  # every reward fits screening answers
    mc = task_for(mc_folder, form="cot", layout="separate", image_size=28)
    assert isinstance(mc, MCTask) and (mc.form, mc.layout, mc.image_size) == ("cot", "separate", 28)
    assert not mc.judges and not mc.verdicts and mc.resume_keys[:3] == ("model", "data", "split")
    with pytest.raises(ValueError, match="reward\\(s\\) accuracy, metric parse screening answers"):
        mc.check_rewards(["mc_format", "accuracy", "metric"], "recipe")
    mc.check_rewards(["mc_format", "mc_accuracy"], "recipe")
    with pytest.raises(ValueError, match="unknown prompt form 'long'"):
        task_for(mc_folder, form="long")
    ds, ids = mc.load("test", limit=3)
    assert len(ids) == 3 and ids == ds["id"][:3]
    item, images, prompt = mc.inputs(ds, [0], len(ids))[0]
    assert item["id"] == ids[0] and images[0].size == (28, 28)
    assert prompt.startswith("You are an expert") and "Options:" in prompt


def test_mc_refuses_judges_and_screening_folders(mc_folder, handmade_dataset):
    with pytest.raises(ValueError, match="judges are not supported for MC evaluation"):
        evaluate(None, mc_folder, "test", judge=object())
    with pytest.raises(ValueError, match="is not a prepared multiple-choice folder"):
        evaluate_mc(None, handmade_dataset, "test")


def test_mc_resumes_from_another_directory_and_records_settings(mc_folder, tiny_internvl, tmp_path, monkeypatch):
    # The run is started with paths relative to one directory and continued from another: the
    # settings hold absolute paths, so the resume matches and generates nothing new.
    monkeypatch.chdir(mc_folder.parent)
    kw = dict(image_size=28, max_new_tokens=6, batch_size=4, progress=False)
    first = evaluate_mc(os.path.relpath(tiny_internvl), "prep", "test", limit=5, out_dir=tmp_path / "run", **kw)
    assert first["generated"] == 5 and first["resumed"] == 0
    settings = first["settings"]
    assert settings["kind"] == "mc" and settings["data"] == str(mc_folder.resolve())
    assert settings["model"] == str(tiny_internvl.resolve()) and settings["limit"] == 5 and settings["layout"] is None
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == settings
    assert json.loads((tmp_path / "run" / "results.json").read_text())["settings"] == settings
    monkeypatch.chdir(tmp_path)
    again = evaluate_mc(str(tiny_internvl), os.path.relpath(mc_folder), "test", limit=5, out_dir="run", **kw)
    assert again["generated"] == 0 and again["resumed"] == 5 and again["overall"] == first["overall"]
    assert again["benchmark"] == "blink" and again["settings"] == settings
