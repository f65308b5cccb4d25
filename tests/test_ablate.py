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
    assert set(figs) == {"scores", "dimensions", "rewards", "hard-easy"}
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

    for a in rs.arms:
        if a.recipe:
            load_recipe(a.recipe, {"run_dir": "runs/x", "arm": a.name})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\narms:\n  - {name: b, recipe: x.yaml, needs: [a]}\n")
    with pytest.raises(ValueError, match="needs 'a'"):
        load_recipe_set(bad)
    with pytest.raises(FileNotFoundError, match="no recipe set"):
        load_recipe_set("nope")
