"""The discriminative CNN baseline (labkit.baseline): it learns on a small synthetic set, its decision
rule is the lab's metric chosen on the training split, its files match the evaluator's, bad input fails clearly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.baseline import (
    BaselineConfig, answers_for, choose_rule, load_arrays, load_config, load_model, predict_ok, rule_scores,
    train_baseline,
)
from labkit.metrics import is_correct


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory):
    """Train 600 / test 80 samples at 64 px, defects of at least medium strength: learnable within seconds."""
    from labkit.synth import make_dataset

    out = tmp_path_factory.mktemp("baseline") / "ds"
    make_dataset(out, train=600, test=80, size=64, seed=3, workers=1, progress=False, severity=(0.5, 1.0))
    return out


@pytest.fixture(scope="module")
def trained(learn_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline-run")
    import torch

    threads = torch.get_num_threads()
    cfg = BaselineConfig(image_size=64, width=16, steps=120, batch_size=32, max_train_s=None, seed=0, threads=1)
    res = train_baseline(learn_data, out, cfg, progress=False)
    assert torch.get_num_threads() == threads  # the caller's thread count is restored (later ablation arms)
    return out, cfg, res


def test_cnn_learns_within_a_short_budget(trained):
    # After 120 steps on 600 samples (~30 CPU-seconds) the per-candidate AUC on unseen test samples is clearly above chance.
    out, cfg, res = trained
    assert res["auc"]["n"] == 4 * 80 and res["n"] == 80
    assert res["auc"]["overall"] > 0.65, res["auc"]
    assert res["train"]["steps"] == 120 and res["train"]["stopped_by"] == "steps"
    assert res["train"]["loss_last"] < res["train"]["loss_first"]
    # the evaluator's result keys, plus the AUC and the rule
    for key in ("overall", "per_dimension", "random_baseline", "random_per_dimension", "n", "unparsed", "n_per_dimension"):
        assert key in res, key
    assert res["unparsed"] == 0 and res["rule"] in ("top1", "all")


def test_files_match_the_evaluator(trained, learn_data):
    # predictions.jsonl scores to the returned result with the lab's scorer; weights reload to the same P(ok).
    from labkit.cli.score import read_predictions
    from labkit.metrics import score

    out, cfg, res = trained
    rows = [json.loads(line) for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and all(len(r["p_ok"]) == 4 for r in rows)
    assert score(*read_predictions(out / "eval" / "predictions.jsonl"))["overall"] == pytest.approx(res["overall"])
    assert json.loads((out / "eval" / "results.json").read_text())["overall"] == pytest.approx(res["overall"])
    model, cfg2, info = load_model(out)
    assert cfg2 == cfg
    test = load_arrays(learn_data, "test", 64, progress=False)
    p = predict_ok(model, test["X"])
    assert np.allclose(p, [r["p_ok"] for r in rows], atol=1e-4)
    assert answers_for(p, res["rule"], res["threshold"]) == [r["prediction"] for r in rows]


def test_threshold_is_chosen_on_the_training_split(trained, learn_data):
    # The saved rule and threshold are exactly what choose_rule picks from the model's P(ok) on train,
    # and its training score is the lab's metric of those answers.
    out, cfg, res = trained
    model, _, info = load_model(out)
    train = load_arrays(learn_data, "train", 64, progress=False)
    p = predict_ok(model, train["X"])
    again = choose_rule(p, train["ok"])
    assert (again["rule"], again["threshold"]) == (res["rule"], res["threshold"])
    answers = answers_for(p, res["rule"], res["threshold"])
    metric = 100 * np.mean([is_correct(a, g) for a, g in zip(answers, train["answers"])])
    assert metric == pytest.approx(res["train_score"])
    assert info["decision"]["threshold"] == res["threshold"]


def test_rule_scores_are_the_metric():
    # The vectorised rule scores agree with labkit.metrics.is_correct on random probabilities.
    rng = np.random.default_rng(0)
    p = rng.random((60, 4))
    ok = rng.random((60, 4)) < 0.4
    labels = ["".join("ABCD"[k] for k in range(4) if row[k]) or "N" for row in ok]
    for rule in ("top1", "all"):
        grid = np.array([0.0, 0.3, 0.55, 0.8, 1.01])
        got = rule_scores(p, ok, rule, grid)
        want = [100 * np.mean([is_correct(a, g) for a, g in zip(answers_for(p, rule, t), labels)]) for t in grid]
        assert got == pytest.approx(want)


def test_choose_rule_prefers_the_best_training_score():
    # Sample 1 has no acceptable candidate and low scores: a threshold between 0.3 and 0.6 answers N there
    # and the sure candidate elsewhere; "all" would also name the 0.7 defective candidate of sample 0.
    p = np.array([[0.9, 0.7, 0.1, 0.1], [0.3, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1]])
    ok = np.array([[True, False, False, False], [False] * 4, [False, True, False, False]])
    best = choose_rule(p, ok)
    assert best["rule"] == "top1" and 0.3 < best["threshold"] <= 0.6 and best["train_score"] == pytest.approx(100)
    assert best["train_scores"]["all"] < 100
    assert choose_rule(p, ok, "all")["rule"] == "all"
    fixed = choose_rule(p, ok, "top1", threshold=0.95)
    assert fixed["threshold"] == 0.95 and fixed["train_score"] == pytest.approx(100 / 3)  # only N on sample 1


def test_bad_input_fails_clearly(tmp_path, learn_data):
    with pytest.raises(ValueError, match="unknown baseline setting.*imagesize"):
        load_config(None, {"imagesize": 64})
    with pytest.raises(ValueError, match="rule must be"):
        load_config(None, {"rule": "best"})
    with pytest.raises(ValueError, match="image_size"):
        load_config(None, {"image_size": 4})
    with pytest.raises(FileNotFoundError, match="baseline recipe"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="the split it trains on"):
        train_baseline(learn_data, tmp_path / "x", BaselineConfig(steps=1), split="train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_baseline(tmp_path / "no-data", tmp_path / "y", BaselineConfig(steps=1))
    with pytest.raises(FileNotFoundError, match="no trained baseline"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="rule must be one of"):
        answers_for(np.zeros((1, 4)), "auto", 0.5)


def test_shipped_recipe_loads():
    # The small recipe's keys are BaselineConfig fields and its budget is one thread, steps first.
    from labkit.cli.baseline import DEFAULT_RECIPE

    cfg = load_config(DEFAULT_RECIPE)
    assert cfg.threads == 1 and cfg.steps >= 100 and cfg.rule == "auto" and cfg.threshold is None
