"""benchmarks/gpu_smoke.py and the InternVL3-1B-hf architecture it builds (benchmarks/internvl3_1b_hf.py):
the published parameter counts, the smoke run's checks, and its CPU form (``--tiny``) run end to end
in a subprocess, with the numbers it prints and writes."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.py"
ARCH = ROOT / "benchmarks" / "internvl3_1b_hf.py"


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke():
    return load_module(SCRIPT)


def test_published_config_is_the_internvl3_1b_architecture(capsys):
    import torch
    from transformers import InternVLForConditionalGeneration

    arch = load_module(ARCH)
    config = arch.full_config(image_token_id=7, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    # 448 px, patch 14, pixel shuffle 0.5: 32 x 32 patches -> 256 language-model tokens per image
    assert config.image_seq_length == 256 and config.downsample_ratio == 0.5
    assert list(config.vision_config.image_size) == [448, 448] and list(config.vision_config.patch_size) == [14, 14]
    assert config.text_config.vocab_size == 151674
    # the lab tokenizer's ids replace the published ones
    assert (config.image_token_id, config.text_config.bos_token_id, config.text_config.eos_token_id) == (7, 1, 2)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = InternVLForConditionalGeneration(config)
    counts = {"vision": 0, "projector": 0, "language": 0}
    for name, p in model.named_parameters():
        part = "vision" if ".vision_tower." in name else "projector" if ".multi_modal_projector." in name else "language"
        counts[part] += p.numel()
    # InternViT-300M, the MLP projector, Qwen2.5-0.5B-sized LM with an untied 151,674 x 896 head
    assert counts == {"vision": 304_012_288, "projector": 4_482_816, "language": 629_697_920}
    assert sum(counts.values()) == 938_193_024
    assert model.lm_head.weight.shape == (151674, 896)
    assert model.lm_head.weight is not model.model.language_model.embed_tokens.weight
    # the script form prints the same table
    assert arch.main() == 0
    printed = capsys.readouterr().out
    assert "938,193,024" in printed and "304,012,288" in printed and "image tokens per 448 px tile: 256" in printed


def good_row(**kw):
    row = {"stage": "sft", "images_per_sample": 5, "image_tokens_per_image": 256, "global_step": 3, "step_s": 0.5,
           "first_step_s": 1.0, "tokens_per_s": 1e4, "peak_memory_gib": 20.0, "last_log": {"loss": 12.0},
           "gradient_checkpointing_setting": True, "gradient_checkpointing": True,
           "changed": {"vision": 0.0, "projector": 0.0, "language": 0.9}}
    row.update(kw)
    return row


def test_checks_name_what_went_wrong(smoke):
    assert smoke.check(good_row(), 256, 3) == []
    bad = smoke.check(good_row(image_tokens_per_image=1024, changed={"vision": 0.2, "projector": 0.0, "language": 0.0},
                               gradient_checkpointing=False, global_step=2, tokens_per_s=float("nan"),
                               last_log={"loss": float("inf")}), 256, 3)
    text = "\n".join(bad)
    for words in ("1024 image tokens per image", "frozen vision part changed", "language model did not change",
                  "gradient checkpointing", "ran 2 steps", "tokens_per_s", "loss is inf"):
        assert words in text, (words, text)
    assert len(bad) == 7
    grpo = good_row(stage="grpo", beta=0.04, reference_model=False, changed={"language": 0.0})
    assert smoke.check(grpo, 256, 3) == ["grpo: beta 0.04 but the trainer has no reference model"]
    # a stage that crashed (e.g. out of GPU memory) is reported, and the table still renders
    crashed = {"stage": "grpo", "recipe": "dpa-grpo", "error": "OutOfMemoryError: CUDA out of memory"}
    assert smoke.check(crashed, 256, 3) == ["grpo: failed: OutOfMemoryError: CUDA out of memory"]
    meta = {"model": "m", "parameters": 1, "dtype": "bfloat16", "device_name": "GPU", "date": "d", "torch": "t",
            "transformers": "x", "trl": "y", "seed": 0, "command": "c"}
    table = smoke.markdown(meta, [good_row(recipe="sft", steps=3, tokens_per_step=8.0, sequence_tokens=9,
                                           images_per_sample=5, image_tokens_per_sample=1280, memory_kind="cuda"), crashed])
    assert "| grpo (dpa-grpo) | failed: OutOfMemoryError: CUDA out of memory |" in table
    assert table.count("\n|") == 4  # header, rule, two stages


def test_bfloat16_weights_that_barely_move_get_a_warning(smoke):
    rows = [good_row(dtype="torch.bfloat16", changed={"vision": 0.0, "projector": 0.0, "language": 0.15},
                     last_log={"learning_rate": 1e-5})]
    notes = smoke.precision_warnings(rows)
    assert len(notes) == 1 and "15%" in notes[0] and "bfloat16" in notes[0]
    assert smoke.precision_warnings([good_row(dtype="torch.float32")]) == []


def test_out_must_not_be_someone_elses_folder(smoke, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        smoke.main(["--tiny", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "not an earlier smoke run" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.slow
def test_tiny_smoke_run_prints_and_writes_sane_numbers(tmp_path):
    out = tmp_path / "smoke"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--out", str(out), "--sft-steps", "3", "--grpo-steps", "2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke checks passed" in proc.stdout
    report = json.loads((out / "gpu_smoke.json").read_text())
    meta, (sft, grpo) = report["meta"], report["stages"]
    assert meta["problems"] == [] and meta["dtype"] == "float32" and meta["device_name"].startswith("CPU")
    assert 100_000 < meta["parameters"] < 1_000_000  # the lab's tiny InternVL
    assert (sft["stage"], sft["recipe"]) == ("sft", "recipes/paper/1b/sft.yaml")
    assert (grpo["stage"], grpo["recipe"]) == ("grpo", "recipes/paper/1b/dpa-grpo.yaml")
    for row, steps in ((sft, 3), (grpo, 2)):
        assert row["steps"] == row["global_step"] == steps
        for key in ("step_s", "first_step_s", "tokens_per_s", "tokens_per_step"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["stage"], key, row[key])
        assert 0.05 < row["peak_memory_gib"] < 24 and "peak RSS" in row["memory_kind"]
        # five images (original + A-D) of the tiny model's 56 px: 2 x 2 patches after pixel shuffle
        assert (row["images_per_sample"], row["image_tokens_per_image"], row["image_tokens_per_sample"]) == (5, 4, 20)
        assert row["sequence_tokens"] > row["image_tokens_per_sample"]
        assert row["gradient_checkpointing"] is True and row["batch"] == 8
        # tokens per second is tokens per step over seconds per step
        assert row["tokens_per_s"] == pytest.approx(row["tokens_per_step"] / row["step_s"], rel=1e-6)
    # SFT: the paper's freeze held bit for bit and the language model learned (float32 on CPU)
    assert sft["changed"]["vision"] == 0 and sft["changed"]["projector"] == 0 and sft["changed"]["language"] > 0.9
    assert 8 * sft["image_tokens_per_sample"] < sft["tokens_per_step"] < 8 * 3 * sft["sequence_tokens"]
    # GRPO: G=4 completions of 2 prompts per step, each prompt the same length; 64-token completions on CPU
    assert (grpo["num_generations"], grpo["beta"], grpo["max_completion_length"]) == (4, 0.04, 64)
    assert grpo["reference_model"] is True and grpo["generation_s_per_step"] > 0
    assert 8 * grpo["sequence_tokens"] < grpo["tokens_per_step"] <= 8 * (grpo["sequence_tokens"] + 64)
    table = (out / "gpu_smoke.md").read_text()
    assert table in proc.stdout
    assert "| sft (recipes/paper/1b/sft.yaml) | 3 |" in table and "| grpo (recipes/paper/1b/dpa-grpo.yaml) | 2 |" in table
    assert "process peak RSS (not GPU memory)" in table
