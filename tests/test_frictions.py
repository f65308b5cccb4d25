"""Small frictions, through the CLI in a subprocess: a bare model name is a one-line error, a closed
pipe (`labkit ... | head`) exits quietly, and a typo in a `--set` key is blamed on the override."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def labkit(*args, **kw):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, env=ENV,
                          timeout=600, **kw)


def test_bare_model_name_is_one_line(handmade_dataset):
    proc = labkit("evaluate", "--model", "foo", "--data", str(handmade_dataset), "--no-progress")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model 'foo' is not a folder" in lines[0] and "ORG/NAME" in lines[0]


def test_closed_pipe_exits_quietly(handmade_dataset):
    # The reader goes away before labkit prints (as `head` does): no traceback, no "Exception ignored".
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "info", str(handmade_dataset)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


def test_set_typo_is_blamed_on_the_override(tmp_path):
    recipe = ROOT / "recipes" / "small" / "sft.yaml"
    proc = labkit("sft", "--recipe", str(recipe), "--run-dir", str(tmp_path), "--set", "training.learning_rat=1e-3")
    assert proc.returncode == 1
    assert "override --set training.learning_rat" in proc.stderr and "unknown training key 'learning_rat'" in proc.stderr
    assert str(recipe) not in proc.stderr  # the file is fine
    proc = labkit("sft", "--recipe", str(recipe), "--set", "limt=3")
    assert proc.returncode == 1 and "override --set limt=...: unknown key 'limt'" in proc.stderr
