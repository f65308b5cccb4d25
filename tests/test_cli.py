"""The labkit CLI through a subprocess: --help everywhere, info and score."""
import json
import subprocess
import sys

import pytest

from labkit.cli import build_parser


def labkit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_help_lists_commands():
    out = labkit("--help")
    assert out.returncode == 0 and "info" in out.stdout and "score" in out.stdout


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command):
    # every subcommand answers --help without importing heavy stages
    out = labkit(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: labkit " + command in out.stdout


def test_info_on_a_test_dataset(handmade_dataset):
    out = labkit("info", str(handmade_dataset))
    assert out.returncode == 0, out.stderr
    # train: mean length 2.0 -> random 40.00; test: A, BD, N, C, ACD -> mean 1.6 -> 32.00
    assert "40.00" in out.stdout and "32.00" in out.stdout
    data = json.loads(labkit("info", str(handmade_dataset), "--json").stdout)
    assert data["test"]["n"] == 5


def test_info_missing_folder_is_a_clear_error(tmp_path):
    out = labkit("info", str(tmp_path / "nope"))
    assert out.returncode == 1 and "error" in out.stderr and "Traceback" not in out.stderr


def test_score_writes_json_next_to_input(tmp_path):
    lines = [
        {"id": "1", "prediction": "<think>x</think><answer>A</answer>", "answer": "AC", "dimension": "physical_shadow"},
        {"id": "2", "prediction": "B", "answer": "AC", "dimension": "physical_shadow"},
        {"id": "3", "prediction": "no idea", "answer": "N", "dimension": "normal"},
        {"id": "4", "prediction": None, "answer": "N", "dimension": "normal"},
    ]
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    out = labkit("score", str(path))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "preds.score.json").read_text())
    # 1 of 4 correct; two unparsed; lengths 2,2,1,1 -> random 30 %
    assert result["overall"] == 25.0 and result["unparsed"] == 2 and result["random_baseline"] == 30.0
    assert result["per_dimension"] == {"normal": 0.0, "physical_shadow": 50.0}
    assert "25.00" in out.stdout


def test_score_malformed_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "prediction": "A", "answer": "A"}\n{not json\n')
    out = labkit("score", str(path))
    assert out.returncode == 1 and "bad.jsonl:2" in out.stderr


def test_score_malformed_answer_names_the_id(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "x9", "prediction": "A", "answer": "AZ"}\n')
    out = labkit("score", str(path))
    assert out.returncode == 1 and "x9" in out.stderr and "AZ" in out.stderr
