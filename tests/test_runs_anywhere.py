"""Runs that do not depend on where they are started: `labkit demo` and `labkit ablate` find their
recipes from the package or the recipe set's folder, and check every arm's recipe before running."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def labkit(*args, cwd, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "labkit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_demo_runs_from_another_directory(tmp_path):
    # Started in an empty folder: the small set's recipes are found in the project, the arm trains and is scored.
    proc = labkit("demo", "--out", "X", "--quick", "--arms", "sft", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "X" / "results.json").read_text())
    assert list(results["arms"]) == ["sft"] and results["arms"]["sft"]["n"] == 10
    done = json.loads((tmp_path / "X" / "sft" / "done.json").read_text())
    assert Path(done["recipe"]) == ROOT / "recipes" / "small" / "sft.yaml"
    assert (tmp_path / "X" / "sft" / "final" / "config.json").exists()
    assert not (tmp_path / "recipes").exists()


def _set(tmp_path: Path, bad_recipe: str) -> Path:
    rs = tmp_path / "sets" / "mine.yaml"
    rs.parent.mkdir(parents=True, exist_ok=True)
    rs.write_text(f"""
name: mine
data: {{dir: "{{run_dir}}/data", synth: {{train: 8, test: 4, size: 56, workers: 1}}}}
base: {{dir: "{{run_dir}}/base", build: {{arch: internvl, size: tiny}}}}
arms:
  - {{name: base, kind: eval, model: "{{run_dir}}/base"}}
  - {{name: sft, recipe: recipes/small/sft.yaml}}
  - {{name: broken, recipe: {bad_recipe}}}
""")
    return rs


def test_broken_recipe_fails_before_any_arm_runs(tmp_path):
    # The third arm's recipe (beside the set file) has a typo; nothing runs: no data, no base model, no arm folder.
    good = (ROOT / "recipes" / "small" / "grpo.yaml").read_text()
    (tmp_path / "sets" / "grpo-typo.yaml").parent.mkdir(parents=True)
    (tmp_path / "sets" / "grpo-typo.yaml").write_text(good.replace("training:", "learning_rat: 0.1\ntraining:", 1))
    rs = _set(tmp_path, "grpo-typo.yaml")
    proc = labkit("ablate", "--recipe-set", str(rs), "--out", "X", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "arm 'broken'" in proc.stderr and "learning_rat" in proc.stderr and "nothing was run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "X" / "data").exists() and not (tmp_path / "X" / "base").exists()


def test_missing_recipe_names_the_arm_and_where_it_looked(tmp_path, monkeypatch):
    from labkit.ablate import load_recipe_set

    rs = _set(tmp_path, "nowhere/grpo.yaml")
    with pytest.raises(FileNotFoundError) as err:
        load_recipe_set(rs)
    msg = str(err.value)
    assert "arm 'broken'" in msg and str(tmp_path / "sets" / "nowhere" / "grpo.yaml") in msg
    assert str(ROOT / "nowhere" / "grpo.yaml") in msg
    # The shipped sets resolve every recipe to a file of the project, wherever Python runs.
    monkeypatch.chdir(tmp_path)
    shipped = load_recipe_set("small")
    assert all(Path(a.recipe).is_file() and Path(a.recipe).is_relative_to(ROOT) for a in shipped.arms if a.recipe)
