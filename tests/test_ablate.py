"""The ablation runner (labkit.ablate) and its report (labkit.report): two tiny arms end to end,
results.json vs the charts in report.html, resume, and recipe-set checks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.ablate import Runner, load_recipe_set, select_arms
from labkit.report import read_figures


def _tiny_set(tmp_path: Path, model: Path, data: Path) -> Path:
    """A recipe set with a base-model eval arm, a tiny SFT arm and a mining arm."""
    recipe = tmp_path / "sft-tiny.yaml"
    recipe.write_text(f"""
arm: sft
stage: sft
model: "{model}"
data: "{data}"
limit: 8
conversion: {{form: cot, image_size: 32}}
freeze: {{vision: true, projector: true, language: false}}
training: {{num_train_epochs: 1, per_device_train_batch_size: 4, learning_rate: 1.0e-3, logging_steps: 1,
           save_strategy: "no", report_to: none, gradient_checkpointing: false, disable_tqdm: true}}
""")
    rs = tmp_path / "tiny-set.yaml"
    rs.write_text(f"""
name: tiny
data: {{dir: "{data}"}}
evaluation: {{split: test, batch_size: 10, max_new_tokens: 8, limit: 10}}
arms:
  - {{name: base, kind: eval, model: "{model}", conversion: {{image_size: 32}}, tables: [4]}}
  - {{name: sft, recipe: "{recipe}", tables: [4, 6]}}
  - {{name: mine, kind: mine, model: "{{run_dir}}/sft/final", conversion: {{image_size: 32}}, needs: [sft]}}
""")
    return rs


@pytest.fixture(scope="module")
def ablation(tiny_internvl, synth_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ablate")
    rs = load_recipe_set(_tiny_set(tmp, tiny_internvl, synth_dataset))
    out = tmp / "run"
    results = Runner(rs, out, seed=0, progress=False).run()
    return rs, out, results


@pytest.mark.slow
def test_ablation_writes_results_and_report(ablation):
    # results.json holds both scored arms with the score fields; mining counts add up; report charts carry the same numbers.
    rs, out, results = ablation
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["arms"]) == ["base", "sft"]
    for arm in ("base", "sft"):
        r = saved["arms"][arm]
        for key in ("overall", "per_dimension", "random_baseline", "n", "unparsed", "wall_s"):
            assert r[key] is not None, (arm, key)
        assert r["n"] == 10 and 0 <= r["overall"] <= 100
        assert (out / arm / "done.json").exists()
    # the base arm's score is the metric over its own predictions file
    from labkit.cli.score import read_predictions
    from labkit.metrics import score

    assert score(*read_predictions(out / "base" / "eval" / "predictions.jsonl"))["overall"] == pytest.approx(
        saved["arms"]["base"]["overall"])
    assert saved["mining"]["hard"] + saved["mining"]["easy"] == saved["mining"]["n"] == 10

    figs = read_figures(out / "report.html")
    assert set(figs) == {"scores", "dimensions", "auc", "rewards", "hard-easy"}
    bars, baseline = figs["scores"]["data"]
    assert bars["x"] == ["base", "sft"]
    assert bars["y"] == pytest.approx([saved["arms"][a]["overall"] for a in ("base", "sft")])
    assert baseline["y"] == pytest.approx([saved["arms"][a]["random_baseline"] for a in ("base", "sft")])
    for trace in figs["dimensions"]["data"]:
        per = saved["arms"][trace["name"]]["per_dimension"]
        assert dict(zip(trace["x"], trace["y"])) == pytest.approx(per)
    hard, easy = figs["hard-easy"]["data"]
    assert hard["y"][0] == saved["mining"]["hard"] and easy["y"][0] == saved["mining"]["easy"]
    html = (out / "report.html").read_text()
    n_hard = saved["mining"]["hard"]
    if n_hard:  # the gallery shows hard cases with inline thumbnails
        assert html.count('<div class="card">') == min(8, n_hard)
        assert "data:image/png;base64," in html


@pytest.mark.slow
def test_rerun_skips_finished_arms(ablation, monkeypatch):
    # A second run trains and evaluates nothing already done; removing one marker re-runs only that arm.
    rs, out, results = ablation

    def boom(*a, **k):
        raise AssertionError("a finished arm was re-run")

    import labkit.evaluate
    import labkit.sft

    monkeypatch.setattr(labkit.sft, "run_sft", boom)
    before = (out / "sft" / "done.json").read_text()
    calls = []
    real_evaluate = labkit.evaluate.evaluate

    def counting(*a, **k):
        calls.append(str(k.get("out_dir")))
        return real_evaluate(*a, **k)

    monkeypatch.setattr(labkit.evaluate, "evaluate", counting)
    Runner(rs, out, seed=0, progress=False).run()
    assert calls == []
    assert (out / "sft" / "done.json").read_text() == before
    (out / "base" / "done.json").unlink()
    again = Runner(rs, out, seed=0, progress=False).run()
    assert calls == [str(out / "base" / "eval")]
    assert again["arms"]["base"]["overall"] == pytest.approx(results["arms"]["base"]["overall"])


def test_recipe_sets_parse_and_select(tmp_path):
    # The shipped sets parse; selecting an arm pulls in its dependencies in set order; bad sets fail clearly.
    rs = load_recipe_set("small")
    names = [a.name for a in rs.arms]
    assert {"sft", "grpo", "dpa-grpo", "hcm-grpo", "hcm-grpo-hard", "hcm-grpo-easy", "hcm-grpo-all",
            "hcm-grpo-all-random", "base-direct", "base-cot", "sft-direct", "grpo-base", "mine"} <= set(names)
    assert [a.name for a in select_arms(rs, ["hcm-grpo"])] == ["sft", "mine", "hcm-grpo"]
    from labkit.recipes import load_recipe

    from labkit.baseline import load_config

    for a in rs.arms:
        if a.kind == "baseline":
            load_config(a.recipe, a.set)
        elif a.recipe:
            load_recipe(a.recipe, {"run_dir": "runs/x", "arm": a.name})
    assert rs.arm("baseline-cnn").kind == "baseline"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\narms:\n  - {name: b, recipe: x.yaml, needs: [a]}\n")
    with pytest.raises(ValueError, match="needs 'a'"):
        load_recipe_set(bad)
    bad.write_text("name: bad\narms:\n  - {name: b, kind: eval, model: m, tables: [4], rows: {5: all}}\n")
    with pytest.raises(ValueError, match=r"rows name table\(s\) \[5\] that are not in its tables \[4\]"):
        load_recipe_set(bad)
    # Table 5: one arm per row of the paper's table in the paper set and in table5-small; every recipe loads.
    from labkit.paper import PAPER

    for name in ("table5-small", "paper"):
        t5 = [a for a in load_recipe_set(name).arms if 5 in a.tables]
        assert sorted(a.rows[5] for a in t5) == sorted(PAPER["table5"]), name
        for a in t5:
            load_recipe(a.recipe, {"run_dir": "runs/x", "arm": a.name})
    with pytest.raises(FileNotFoundError, match="no recipe set"):
        load_recipe_set("nope")


# ----------------------------------------------------------------------------- baseline arm, seeds and spread

def _seeds_set(tmp_path: Path, model: Path, data: Path) -> Path:
    """An eval arm of the tiny VLM and a CNN baseline arm with a few-second budget."""
    rs = tmp_path / "seeds-set.yaml"
    rs.write_text(f"""
name: tiny-seeds
data: {{dir: "{data}"}}
evaluation: {{split: test, batch_size: 10, max_new_tokens: 8, limit: 10}}
arms:
  - {{name: base, kind: eval, model: "{model}", conversion: {{image_size: 32}}, tables: [4]}}
  - {{name: cnn, kind: baseline, recipe: recipes/baseline/cnn-small.yaml, tables: [4],
     set: {{image_size: 32, width: 4, steps: 6, batch_size: 4, eval_batch_size: 8}}}}
""")
    return rs


@pytest.fixture(scope="module")
def seeds_run(tiny_internvl, synth_dataset, tmp_path_factory):
    from labkit.seeds import run_seeds

    tmp = tmp_path_factory.mktemp("seeds")
    rs = load_recipe_set(_seeds_set(tmp, tiny_internvl, synth_dataset))
    out = tmp / "run"
    return out, run_seeds(rs, out, [0, 1], progress=False)


def test_seeds_aggregate_mean_and_std(seeds_run):
    # Each seed has its own run folder; results.json keeps every seed's numbers, their mean and sample std.
    import statistics

    out, results = seeds_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and set(saved["arms"]) == {"base", "cnn"}
    for arm in ("base", "cnn"):
        r = saved["arms"][arm]
        per = [json.loads((out / f"seed-{s}" / "results.json").read_text())["arms"][arm] for s in (0, 1)]
        assert [r["per_seed"][str(s)]["overall"] for s in (0, 1)] == [p["overall"] for p in per]
        assert r["overall"] == pytest.approx(statistics.mean(p["overall"] for p in per))
        assert r["std"]["overall"] == pytest.approx(statistics.stdev(p["overall"] for p in per))
        for dim, v in r["per_dimension"].items():
            assert v == pytest.approx(statistics.mean(p["per_dimension"][dim] for p in per))
        assert r["n_seeds"] == 2 and r["n"] == 10
    cnn = saved["arms"]["cnn"]
    # the baseline carries the per-candidate AUC; its mean and std come from the seeds' own
    aucs = [cnn["per_seed"][s]["auc"]["overall"] for s in ("0", "1")]
    assert cnn["auc"]["overall"] == pytest.approx(statistics.mean(aucs))
    assert cnn["std"]["auc"]["overall"] == pytest.approx(statistics.stdev(aucs))
    assert cnn["kind"] == "baseline" and cnn["dir"] == "seed-0/cnn"
    assert (out / "seed-1" / "cnn" / "model.safetensors").exists()
    assert (out / "seed-1" / "cnn" / "eval" / "predictions.jsonl").exists()
    # one dataset for all seeds, and the seeds really differ: the CNN's initialisation and batches follow the seed
    assert _data_of(out, 0) == _data_of(out, 1) == saved["data"]
    p0, p1 = ((out / f"seed-{s}" / "cnn" / "eval" / "predictions.jsonl").read_text() for s in (0, 1))
    assert p0 != p1


def _data_of(out: Path, seed: int) -> str:
    return json.loads((out / f"seed-{seed}" / "results.json").read_text())["data"]


def test_seeds_report_has_error_bars(seeds_run):
    # The report's bars are the means and their error bars the stds; the AUC figure shows the baseline arm.
    out, results = seeds_run
    figs = read_figures(out / "report.html")
    assert {"scores", "dimensions", "auc"} <= set(figs)
    bars = figs["scores"]["data"][0]
    assert bars["y"] == pytest.approx([results["arms"][a]["overall"] for a in bars["x"]])
    assert bars["error_y"]["array"] == pytest.approx([results["arms"][a]["std"]["overall"] for a in bars["x"]])
    overall = next(t for t in figs["auc"]["data"] if t["name"] == "overall")
    assert "cnn" in overall["x"]
    i = overall["x"].index("cnn")
    assert overall["y"][i] == pytest.approx(results["arms"]["cnn"]["auc"]["overall"])
    assert overall["error_y"]["array"][i] == pytest.approx(results["arms"]["cnn"]["std"]["auc"]["overall"])
    html = (out / "report.html").read_text()
    assert "Means over seeds 0, 1" in html and " ± " in html


def test_aggregate_tolerates_missing_arms_and_auc():
    # An arm that finished on one seed only: its mean is that seed's number and its std is None;
    # an arm without an auc has none in the aggregate; the report draws without error bars for it.
    from labkit.report import auc_figure, score_figure
    from labkit.seeds import aggregate, mean_std, parse_seeds

    def arm(overall, auc=None):
        r = {"overall": overall, "per_dimension": {"placement_layout": overall}, "random_baseline": 34.0, "n": 4,
             "unparsed": 0, "kind": "train", "dir": "a"}
        if auc is not None:
            r["auc"] = {"overall": auc, "first": auc, "per_dimension": {"placement_layout": auc}, "n": 16}
        return r

    per_seed = {0: {"arms": {"a": arm(50.0, 0.7), "b": arm(25.0)}, "minutes": 1.0},
                1: {"arms": {"a": arm(70.0, 0.9)}, "minutes": 2.0}}
    agg = aggregate(per_seed, [0, 1])
    a, b = agg["arms"]["a"], agg["arms"]["b"]
    assert a["overall"] == 60.0 and a["std"]["overall"] == pytest.approx(14.142, abs=1e-3)
    assert a["auc"]["overall"] == pytest.approx(0.8) and a["std"]["auc"]["per_dimension"]["placement_layout"] == pytest.approx(0.1414, abs=1e-4)
    assert b["overall"] == 25.0 and b["std"]["overall"] is None and b["n_seeds"] == 1 and "auc" not in b
    assert agg["minutes"] == 3.0 and agg["seed"] is None
    bars = score_figure(agg).data[0]
    assert list(bars.error_y.array) == pytest.approx([14.142, 0], abs=1e-3)
    assert list(auc_figure(agg).data[0].x) == ["a"]
    assert mean_std([1.0, None, float("nan")]) == (1.0, None)
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    for bad in ("", "0,x", "1,1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.slow
def test_single_seed_results_stay_compatible(ablation):
    # A single-seed results.json has no seeds keys and the report draws no error bars.
    rs, out, results = ablation
    saved = json.loads((out / "results.json").read_text())
    assert saved["seed"] == 0 and "seeds" not in saved
    assert all("std" not in r for r in saved["arms"].values())
    assert read_figures(out / "report.html")["scores"]["data"][0].get("error_y") is None
