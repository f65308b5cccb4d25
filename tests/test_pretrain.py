"""The small pretrained VLM (labkit pretrain), the pairs layout, perception rows and the AUC measures."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from labkit.conversions import make_pair, sample_images
from labkit.data import load_split
from labkit.metrics import auc, candidate_auc


# ----------------------------------------------------------------------------- AUC

def test_auc_counts_ties_half_and_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    pos = rng.random(60) < 0.4
    pairs = [(1.0 if s > t else 0.5 if s == t else 0.0) for s, p in zip(scores, pos) if p
             for t, q in zip(scores, pos) if not q]
    assert auc(scores, pos) == pytest.approx(sum(pairs) / len(pairs))
    assert auc([0.1, 0.9], [False, True]) == 1.0 and auc([0.9, 0.1], [False, True]) == 0.0
    assert np.isnan(auc([0.3, 0.4], [True, True]))


def test_candidate_auc_overall_first_and_per_dimension():
    scores = [[0.9, 0.2, 0.8, 0.1], [0.3, 0.7, 0.75, 0.05]]
    defects = [[[], ["physical_shadow"], [], ["placement_layout"]],
               [["physical_shadow"], [], ["placement_layout"], ["physical_shadow"]]]
    r = candidate_auc(scores, defects)
    assert r["n"] == 8
    # acceptable: .9 .8 .7 ; shadow: .2 .3 .05 (all below) ; placement: .1 .75 (.75 beats .7: 5 of 6 pairs)
    assert r["per_dimension"]["physical_shadow"] == 1.0
    assert r["per_dimension"]["placement_layout"] == pytest.approx(5 / 6)
    assert r["first"] == 1.0  # candidate A: .9 (acceptable) above .3 (shadow)
    with pytest.raises(ValueError, match="scores for"):
        candidate_auc([[0.5, 0.5]], [[[], [], [], []]])


def test_top1_rule_names_the_most_confident_candidate():
    from labkit.tasks import top1_score

    rows = [{"p_ok": [0.1, 0.7, None, 0.2], "answer": "B", "dimension": "normal"},
            {"p_ok": [0.4, 0.3, 0.2, 0.1], "answer": "N", "dimension": "physical_shadow"},
            {"p_ok": [None, None, None, None], "answer": "A", "dimension": "normal"}]
    r = top1_score(rows)
    # B right; A named where N is the label: wrong; all undecided -> A (first of ties): right
    assert r["overall"] == pytest.approx(200 / 3) and r["per_dimension"]["physical_shadow"] == 0.0


# ----------------------------------------------------------------------------- pairs layout

def test_pair_puts_original_left_candidate_right_at_model_size():
    red, blue = Image.new("RGB", (224, 224), "red"), Image.new("RGB", (224, 224), "blue")
    pair = make_pair(red, blue, 64)
    assert pair.size == (64, 64)
    a = np.array(pair)
    assert (a[:, :32, 0] > 200).all() and (a[:, 32:, 2] > 200).all()
    assert make_pair(red, blue).size == (224, 224)  # without a size: the candidate's


def test_pairs_layout_gives_four_labelled_pairs(synth_dataset):
    from labkit.conversions import screening_message
    from labkit.prompts import screening_prompt

    sample = load_split(synth_dataset, "test")[0]
    images = sample_images(sample, "pairs", 48)
    assert len(images) == 4 and all(im.size == (48, 48) for im in images)
    msg = screening_message("pairs", screening_prompt("cot", "pairs", "train", "short"))
    labels = [c["text"].strip() for c in msg["content"] if c["type"] == "text"][:4]
    assert labels == ["A:", "B:", "C:", "D:"]
    assert sum(c["type"] == "image" for c in msg["content"]) == 4
    with pytest.raises(ValueError, match="unknown layout"):
        sample_images(sample, "triples", 48)


def test_perception_rows_describe_candidates_never_the_answer(synth_dataset):
    from labkit.perception import perception_rows
    from labkit.synth.text import NOTHING_SEEN

    ds = load_split(synth_dataset, "train")
    rows = perception_rows(ds, {"defects_image": 8, "describe_mixed": 3}, image_size=32, seed=0, layout="pairs")
    single = [r for r in rows if len(r["images"]) == 1]
    assert len(single) == 8 and len(rows) == 11
    # 8 single rows = the 4 candidates of samples 0 and 1: "nothing wrong" exactly for the clean ones
    texts = [r["messages"][1]["content"][0]["text"] for r in single]
    metas = [json.loads(ds[i]["meta"]) if isinstance(ds[i]["meta"], str) else ds[i]["meta"] for i in (0, 1)]
    clean = sum(not c["kinds"] for m in metas for c in m["candidates"])
    assert sum(t.endswith(f": {NOTHING_SEEN}.") for t in texts) == clean
    assert sorted(t.split(": ", 1)[0] for t in texts) == sorted("ABCD" * 2)
    for t in texts:
        words = t.split(": ", 1)[1]
        assert "ok" not in words.split() and "acceptable" not in words and "answer" not in words
    with pytest.raises(ValueError, match="unknown perception row kind"):
        perception_rows(ds, {"captions": 1})


# ----------------------------------------------------------------------------- labkit pretrain

def test_quick_pretrain_runs_every_stage_resumes_and_reloads(tmp_path):
    from transformers import AutoModelForImageTextToText

    from labkit.pretrain import PretrainConfig, run_pretrain

    out = tmp_path / "pre"
    cfg = PretrainConfig.quick()
    run_pretrain(out, cfg, progress=False)
    log = json.loads((out / "pretrain.json").read_text())
    assert list(log["stages"]) == ["data", "base", "vision", "read", "find"]
    assert log["stages"]["data"]["seed"] == 1000  # pretraining data never shares the demo's seeds
    vision = log["stages"]["vision"]
    assert vision["steps"] == cfg.vision_steps and 0.0 <= vision["heldout_auc"]["overall"] <= 1.0
    info = json.loads((out / "labkit_model.json").read_text())
    assert info["pretrained"]["stages"] == ["data", "base", "vision", "read", "find"]
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.vision_config.image_size in (64, [64, 64])
    # a rerun finds every stage done and trains nothing
    mtime = (out / "model.safetensors").stat().st_mtime
    run_pretrain(out, cfg, progress=False)
    assert (out / "model.safetensors").stat().st_mtime >= mtime
    assert json.loads((out / "pretrain.json").read_text())["stages"] == log["stages"]
    with pytest.raises(ValueError, match="other settings"):
        run_pretrain(out, PretrainConfig.quick(read_rows=48), progress=False)
    # a recipe set whose base is the pretrained model: the cached one is copied in, not retrained
    from dataclasses import asdict

    from labkit.ablate import RecipeSet, Runner

    fields = {k: v for k, v in asdict(cfg).items()}
    rs = RecipeSet(name="t", arms=[], data={"dir": str(out / "stages" / "data")},
                   base={"dir": "{run_dir}/base-model", "pretrained": {"cache": str(out), **fields}})
    times = Runner(rs, tmp_path / "run", progress=False).setup()
    base = tmp_path / "run" / "base-model"
    assert (base / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    assert not (base / "stages").exists() and "pretrain_s" not in times
