"""Model cards: a tiny SFT run through `labkit sft` leaves a Hugging Face model card in final/
(YAML header, recipe, data fingerprint, intended use), and `labkit evaluate` fills in the scores
per dimension with the random baseline and the seed (both in subprocesses)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.slow

RECIPE = """
arm: card-sft
stage: sft
description: Tiny CoT SFT for the model-card test.
model: {model}
data: {data}
run_dir: {run_dir}
cot: verdicts
seed: 3
conversion: {{image_size: 32}}
freeze: {{vision: true, projector: true, language: false}}
training:
  use_cpu: true
  bf16: false
  gradient_checkpointing: false
  num_train_epochs: 1
  per_device_train_batch_size: 2
  learning_rate: 1.0e-3
  logging_steps: 1
  save_strategy: "no"
  max_length: null
  dataloader_num_workers: 0
  report_to: none
  disable_tqdm: true
"""


def labkit(*args):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=600)


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_after_sft_and_after_evaluate(tiny_internvl, handmade_dataset, tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(RECIPE.format(model=tiny_internvl, data=handmade_dataset, run_dir=tmp_path / "run"))
    proc = labkit("sft", "--recipe", str(recipe))
    assert proc.returncode == 0, proc.stderr
    final = tmp_path / "run" / "card-sft" / "final"
    card = (final / "README.md").read_text()
    header = front_matter(card)
    assert header["base_model"] == str(tiny_internvl)
    assert header["library_name"] == "transformers" and header["pipeline_tag"] == "image-text-to-text"
    assert {"labkit", "sft", "internvl", "trl"} <= set(header["tags"])
    assert header["datasets"] == ["ds"] and "model-index" not in header
    # The fingerprint is the SHA-256 of the training split's file, as recorded in labkit_train.json.
    digest = hashlib.sha256(b"train.parquet\0" + (handmade_dataset / "train.parquet").read_bytes()).hexdigest()
    assert f"fingerprint: `sha256:{digest}`" in card
    assert json.loads((final / "labkit_train.json").read_text())["data_fingerprint"] == f"sha256:{digest}"
    assert "2 optimizer steps, seed 3" in card and "- samples: 4, training rows: 4" in card
    assert "## Recipe" in card and "cot: verdicts" in card and "## Intended use" in card
    assert "Not evaluated yet" in card and "fine-tuned version of" not in card

    out = tmp_path / "eval"
    proc = labkit("evaluate", "--model", str(final), "--data", str(handmade_dataset), "--split", "test",
                  "--out", str(out), "--max-new-tokens", "8", "--image-size", "32", "--seed", "5", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "results.json").read_text())
    card = (final / "README.md").read_text()
    header = front_matter(card)
    [entry] = header["model-index"][0]["results"]
    assert entry["dataset"]["split"] == "test"
    metrics = {m["name"]: m["value"] for m in entry["metrics"]}
    assert metrics["overall"] == round(result["overall"], 2)
    assert set(metrics) == {"overall", *result["per_dimension"]} and len(result["per_dimension"]) == 5
    assert "with seed 5" in card and "Not evaluated yet" not in card
    assert f"| overall | 5 | {result['overall']:.2f} | 32.00 |" in card  # test answers A, BD, N, C, ACD: random 32 %
    for dim, value in result["per_dimension"].items():
        assert f"| {dim} | 1 | {value:.2f} | {result['random_per_dimension'][dim]:.2f} |" in card
    # Evaluating again with the same settings replaces the entry rather than adding one.
    proc = labkit("evaluate", "--model", str(final), "--data", str(handmade_dataset), "--split", "test",
                  "--max-new-tokens", "8", "--image-size", "32", "--seed", "5", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((final / "labkit_evaluations.json").read_text())) == 1
