"""Built screeners: real architectures, offline reload with plain transformers, tokenizer contract."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter that never imports labkit: the folder alone must be enough.
RELOAD = textwrap.dedent(
    """
    import json, os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = {}
    for path in sys.argv[1:]:
        proc = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        tok = proc.tokenizer
        colours = ["white", "red", "blue", "green", "gray"]
        five = [Image.new("RGB", (64, 64), c) for c in colours]
        grid = [five[0], Image.new("RGB", (128, 128), "purple")]
        def turn(n, text):
            return [{"role": "user", "content": [{"type": "image"}] * n + [{"type": "text", "text": text}]}]
        texts = [proc.apply_chat_template(turn(5, "Which candidates pass?"), add_generation_prompt=True, tokenize=False),
                 proc.apply_chat_template(turn(2, "Grid layout."), add_generation_prompt=True, tokenize=False)]
        tok.padding_side = "left"
        inputs = proc(text=texts, images=[five, grid], padding=True, return_tensors="pt")
        with torch.inference_mode():
            gen = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        new = gen[:, inputs["input_ids"].shape[1]:]
        reply = "<think>A is fine.</think><answer>AC</answer>"
        ids = tok(reply + "<|im_end|>", add_special_tokens=False)["input_ids"]
        conv = turn(1, "q") + [{"role": "assistant", "content": [{"type": "text", "text": reply}]}]
        masked = tok.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        out[path] = dict(
            model_class=type(model).__name__,
            processor_class=type(proc).__name__,
            batch_shape=list(gen.shape),
            new_tokens=new.shape[1],
            decoded=len(tok.batch_decode(new, skip_special_tokens=True)),
            roundtrip=tok.decode(ids, skip_special_tokens=True),
            assistant=tok.decode([i for i, m in zip(masked["input_ids"], masked["assistant_masks"]) if m]),
            labkit_imported=any(m == "labkit" or m.startswith("labkit.") for m in sys.modules),
        )
    print(json.dumps(out))
    """
)


def test_tiny_models_are_real_architectures_under_a_million_parameters(tiny_internvl, tiny_qwen):
    # the fixtures return folders holding the real transformers classes, < 1M parameters
    for path, arch, cls in ((tiny_internvl, "internvl", "InternVLForConditionalGeneration"),
                            (tiny_qwen, "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration")):
        info = json.loads((path / "labkit_model.json").read_text())
        config = json.loads((path / "config.json").read_text())
        assert info["arch"] == arch and info["size"] == "tiny" and info["seed"] == 0
        assert 50_000 < info["parameters"] < 1_000_000
        assert config["architectures"] == [cls]
        assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))


def test_reload_with_plain_transformers_and_generate(tiny_internvl, tiny_qwen):
    # both families reload offline in a process that never imports labkit, generate in one
    # left-padded batch with 5 images (separate layout) and 2 images (grid layout), keep the
    # think/answer tags through decoding with special tokens skipped, and mask only the reply
    proc = subprocess.run([sys.executable, "-c", RELOAD, str(tiny_internvl), str(tiny_qwen)],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {str(tiny_internvl): ("InternVLForConditionalGeneration", "InternVLProcessor"),
                str(tiny_qwen): ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor")}
    for path, (model_cls, proc_cls) in expected.items():
        r = out[path]
        assert (r["model_class"], r["processor_class"]) == (model_cls, proc_cls)
        assert r["batch_shape"][0] == 2 and r["new_tokens"] == 6 and r["decoded"] == 2
        assert r["roundtrip"] == "<think>A is fine.</think><answer>AC</answer>"
        assert r["assistant"] == "<think>A is fine.</think><answer>AC</answer><|im_end|>"
        assert r["labkit_imported"] is False


def test_tokenizer_contract(tiny_internvl):
    # tags are single non-special tokens, ChatML/image tokens are special, letters A-D stand alone
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_internvl)
    tok = proc.tokenizer
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        ids = tok(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] not in tok.all_special_ids
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<IMG_CONTEXT>", "<img>", "</img>"):
        ids = tok(f"x{special}y", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(special) in ids  # one token, never split
        assert tok.decode(ids, skip_special_tokens=True) == "xy"  # and skipped when decoding
    assert tok.convert_ids_to_tokens(tok("ABCD", add_special_tokens=False)["input_ids"]) == ["A", "B", "C", "D"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # InternVL: one image turns into <img> + image_seq_length context tokens + </img>
    config = json.loads((tiny_internvl / "config.json").read_text())
    assert proc.image_seq_length == config["image_seq_length"] == 4


def test_build_is_deterministic_and_validates(tmp_path, tiny_internvl):
    # the same seed gives byte-identical weights; another seed other weights; bad names fail clearly
    from labkit.models import build_model

    again = build_model("internvl", "tiny", tmp_path / "again", seed=0)
    other = build_model("internvl", "tiny", tmp_path / "other", seed=1)
    weights = (tiny_internvl / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == weights
    assert (other / "model.safetensors").read_bytes() != weights
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("llava", "tiny", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown size"):
        build_model("internvl", "huge", tmp_path / "x")


def test_load_defaults_and_errors(tiny_qwen, tmp_path):
    # CPU float32 here, eval mode, left padding; missing folders and hub aliases resolve clearly
    import torch

    from labkit.models import load, resolve_name

    model, processor = load(tiny_qwen)
    assert model.device.type == "cpu" and model.dtype == torch.float32 and not model.training
    assert processor.tokenizer.padding_side == "left"
    assert resolve_name("InternVL3-1B-hf") == "OpenGVLab/InternVL3-1B-hf"
    assert resolve_name("Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load(tmp_path / "empty")
