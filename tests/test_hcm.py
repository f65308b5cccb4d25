"""Hard-case mining: the HCM sampler's contract, a real GRPO run over the schedule, dynamic
sampling, and mining agreeing with the evaluator (labkit.hcm)."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from labkit.hcm import LATE_MIXES, HCMConfig, HCMSampler, epoch_pool, partition


def _groups(seq, g):
    """Split a sampler stream into groups of g and check each is one index repeated."""
    assert len(seq) % g == 0
    out = []
    for i in range(0, len(seq), g):
        grp = seq[i:i + g]
        assert len(set(grp)) == 1, f"group {grp} mixes prompts"
        out.append(grp[0])
    return out


def test_sampler_keeps_trl_grouping_and_constant_length():
    # G-repeats in a row, chunks repeated repeat_count times, len == what is yielded, same length every epoch.
    hard = [1, 4, 7, 9, 12]
    s = HCMSampler(20, hard, HCMConfig(switch_epoch=3, late_epochs=2, late_mix="all+hard"),
                   mini_repeat_count=4, batch_size=3, repeat_count=2, seed=5)
    lengths = []
    for epoch in range(3):
        s.set_epoch(epoch)
        seq = list(s)
        lengths.append(len(seq))
        assert len(seq) == len(s)
        prompts = _groups(seq, 4)
        # each chunk of 3 prompts appears twice in a row (num_iterations * steps_per_generation = 2)
        chunks = [prompts[i:i + 3] for i in range(0, len(prompts), 3)]
        assert all(chunks[i] == chunks[i + 1] for i in range(0, len(chunks), 2))
    assert len(set(lengths)) == 1
    # resume relies on the order being a function of (seed, epoch): a fresh sampler replays it exactly,
    # so the trainer's skip_first_batches skips exactly the batches already trained on
    again = HCMSampler(20, hard, HCMConfig(switch_epoch=3, late_epochs=2, late_mix="all+hard"),
                       mini_repeat_count=4, batch_size=3, repeat_count=2, seed=5)
    again.set_epoch(2)
    assert list(again) == seq
    s.set_epoch(0)
    assert list(s) != seq  # a new trainer epoch reshuffles
    # 3 epochs of 20 prompts (18 after dropping the incomplete chunk) + 2 of 25 (24): exact sum
    assert lengths[0] == (3 * 18 + 2 * 24) * 4 * 2


def test_sampler_draws_hard_cases_only_after_switch():
    # Early epochs: every prompt at most once; late "all+hard": hard prompts may appear twice, easy never.
    hard = set(range(0, 30, 3))
    s = HCMSampler(30, sorted(hard), HCMConfig(switch_epoch=2, late_epochs=2, late_mix="all+hard"),
                   mini_repeat_count=2, batch_size=5, repeat_count=1, seed=0)
    plan = s.plan()
    assert [p["phase"] for p in plan] == ["early", "early", "late", "late"]
    for p in plan[:2]:
        assert sorted(p["indices"]) == list(range(30))           # all data exactly once
        assert p["hard"] == 10 and p["easy"] == 20
    for p in plan[2:]:
        c = Counter(p["indices"])
        assert len(p["indices"]) == 40                            # 30 + 10 hard, 8 full chunks
        assert all(c[i] == 1 for i in range(30) if i not in hard)
        assert all(c[i] == 2 for i in hard)
        assert p["hard"] == 20 and p["easy"] == 20
    # and the stream the trainer gets follows the plan in order
    assert _groups(list(s), 2) == [i for p in plan for i in p["indices"]]


@pytest.mark.parametrize("mix", LATE_MIXES)
def test_each_late_mix(mix):
    # The five Table 7 compositions draw what their names say (k_random defaults to the number of hard cases).
    import random

    hard = {0, 1, 2, 3}
    pool = epoch_pool(12, hard, mix, random.Random(0))
    c = Counter(pool)
    expected = {"hard": (4, 4, 0), "easy": (8, 0, 8), "all": (12, 4, 8), "all+random": (16, None, None),
                "all+hard": (16, 8, 8)}[mix]
    assert len(pool) == expected[0]
    if expected[1] is not None:
        assert sum(c[i] for i in hard) == expected[1]
        assert sum(c[i] for i in c if i not in hard) == expected[2]
    if mix == "all+random":
        assert set(range(12)) <= set(pool) and max(c.values()) == 2 and sum(v == 2 for v in c.values()) == 4


def test_sampler_rejects_bad_config():
    # Clear errors: unknown mix, out-of-range hard index, a late mix too small for one generation batch.
    with pytest.raises(ValueError, match="late_mix"):
        HCMConfig.from_dict({"late_mix": "hardest"})
    with pytest.raises(ValueError, match="unknown key"):
        HCMConfig.from_dict({"switch": 3})
    with pytest.raises(ValueError, match="out of range"):
        HCMSampler(5, [7], HCMConfig(), mini_repeat_count=2)
    with pytest.raises(ValueError, match="fewer than one generation batch"):
        HCMSampler(10, [1], HCMConfig(late_mix="hard"), mini_repeat_count=2, batch_size=2)


def test_partition_uses_metric():
    # Hard = wrong under labkit.metrics.is_correct (a subset of the label is correct; N only for N).
    rows = partition([
        {"id": "a", "prediction": "<answer>A</answer>", "answer": "AC"},
        {"id": "b", "prediction": "<answer>AB</answer>", "answer": "AC"},
        {"id": "c", "prediction": None, "answer": "N"},
        {"id": "d", "prediction": "x", "answer": "B", "correct": True},  # the evaluator's verdict wins
    ])
    assert [r["hard"] for r in rows] == [False, True, True, False]


# ----------------------------------------------------------------------------- real trainer runs

def _grpo_recipe(model, data, out, hcm=None, dynamic=False, rewards=None):
    from labkit.recipes import recipe_from_dict

    return recipe_from_dict({
        "arm": "t", "stage": "grpo", "model": str(model), "data": str(data), "output_dir": str(out),
        "limit": 8, "rewards": rewards or {"format": 1.0, "accuracy": 1.0},
        "hcm": hcm or {}, "dynamic_sampling": dynamic, "dynamic_sampling_mode": "mask",  # refill: test_dynamic_sampling.py
        "conversion": {"form": "cot", "image_size": 32},
        "training": {"num_generations": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                     "max_completion_length": 12, "learning_rate": 1e-4, "logging_steps": 1, "save_strategy": "no",
                     "beta": 0.0, "loss_type": "grpo", "log_completions": False, "gradient_checkpointing": False,
                     "disable_tqdm": True},
    })


@pytest.fixture(scope="module")
def hcm_run(tiny_internvl, synth_dataset, tmp_path_factory, ):
    """One real HCM-GRPO run on 8 prompts: 1 epoch of all data, then 1 of hard only, with dynamic
    sampling on and a reward that ties for the groups of 3 chosen prompts."""
    from labkit import rewards as R
    from labkit.data import load_split
    from labkit.hcm import run_hcm_grpo

    out = tmp_path_factory.mktemp("hcm")
    ids = load_split(synth_dataset, "train", validate=False, check_images=False)["id"][:8]
    hard_ids, tie_ids = ids[:4], {ids[0], ids[5], ids[6]}
    (out / "hard_cases.jsonl").write_text("".join(
        json.dumps({"id": i, "hard": i in hard_ids, "answer": "A"}) + "\n" for i in ids))
    seen = []

    def recorder(completions, id=None, **kw):
        # tied rewards (all 1.0) for the tie prompts, alternating 0/1 within every other group
        seen.extend(id)
        return [1.0 if sid in tie_ids else float(j % 2) for j, sid in enumerate(id)]

    mp = pytest.MonkeyPatch()
    mp.setitem(R.REWARDS, "recorder", recorder)
    try:
        recipe = _grpo_recipe(tiny_internvl, synth_dataset, out / "run", dynamic=True, rewards={"recorder": 1.0},
                              hcm={"hard_cases": str(out / "hard_cases.jsonl"), "switch_epoch": 1, "late_epochs": 1,
                                   "late_mix": "hard"})
        run_hcm_grpo(recipe)
    finally:
        mp.undo()
    log = [json.loads(line) for line in (out / "run" / "hcm_epochs.jsonl").read_text().splitlines()]
    train_log = [json.loads(line) for line in (out / "run" / "train_log.jsonl").read_text().splitlines()]
    return dict(ids=ids, hard=set(hard_ids), tie=tie_ids, seen=seen, log=log, train_log=train_log)


@pytest.mark.slow
def test_real_grpo_run_follows_the_schedule(hcm_run):
    # The prompts the reward saw: epoch 1 = the 8 prompts once each; epoch 2 = hard prompts only;
    # the per-epoch counts logged in hcm_epochs.jsonl match what was drawn; the trainer ran exactly the schedule's steps.
    prompts = _groups(hcm_run["seen"], 2)
    log = hcm_run["log"]
    assert [(r["epoch"], r["mix"], r["prompts"], r["hard"], r["easy"]) for r in log] == [
        (1, "all", 8, 4, 4), (2, "hard", 4, 4, 0)]
    first, second = prompts[:8], prompts[8:]
    assert sorted(first) == sorted(hcm_run["ids"])
    assert len(second) == 4 and set(second) <= hcm_run["hard"]
    for row, drawn in zip(log, (first, second)):
        assert row["hard"] == sum(p in hcm_run["hard"] for p in drawn)
        assert row["easy"] == sum(p not in hcm_run["hard"] for p in drawn)
    steps = [r["step"] for r in hcm_run["train_log"] if "loss" in r]
    assert max(steps) == 6 == log[-1]["last_step"]  # (8 + 4 prompts) / 2 prompts per step


@pytest.mark.slow
def test_dynamic_sampling_skips_tied_groups(hcm_run):
    # Each step is one generation batch of 2 groups; the logged skipped fraction equals the share of
    # groups whose prompt got tied rewards.
    prompts = _groups(hcm_run["seen"], 2)
    expected = [sum(p in hcm_run["tie"] for p in prompts[i:i + 2]) / 2 for i in range(0, len(prompts), 2)]
    logged = [r["dynamic_sampling/skipped_fraction"] for r in hcm_run["train_log"] if "dynamic_sampling/skipped_fraction" in r]
    assert logged == pytest.approx(expected)
    assert 0 < sum(expected) < len(expected)  # some groups skipped, not all


@pytest.mark.slow
def test_mining_agrees_with_evaluator(tiny_internvl, synth_dataset, tmp_path):
    # mine-hard's easy ids are exactly the ids the evaluator scores correct with the same settings,
    # and mining.json counts add up.
    from labkit.evaluate import evaluate
    from labkit.hcm import mine_hard

    kw = dict(form="cot", layout="separate", variant="train", image_size=32, batch_size=8, max_new_tokens=8, limit=12,
              progress=False)
    summary = mine_hard(tiny_internvl, synth_dataset, "train", tmp_path / "mine", **kw)
    evaluate(tiny_internvl, synth_dataset, "train", out_dir=tmp_path / "eval", **kw)
    ev = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    mined = [json.loads(line) for line in (tmp_path / "mine" / "hard_cases.jsonl").read_text().splitlines()]
    assert {r["id"] for r in mined if not r["hard"]} == {r["id"] for r in ev if r["correct"]}
    assert {r["id"] for r in mined} == {r["id"] for r in ev} and len(mined) == 12
    saved = json.loads((tmp_path / "mine" / "mining.json").read_text())
    assert saved["hard"] + saved["easy"] == 12 == summary["n"]
    assert saved["hard"] == sum(r["hard"] for r in mined)


@pytest.mark.parametrize("folder", ["recipes/small", "recipes/paper/1b", "recipes/paper/2b"])
def test_hcm_recipes_differ_from_dpa_grpo_only_in_the_schedule(folder):
    # Table 6/7 compare HCM arms with DPA-GRPO: same model, data, rewards and trainer settings; only the
    # hcm block, the arm name and the trainer-epoch bookkeeping differ. Each of the five Table 7 mixes exists.
    from pathlib import Path

    from labkit.recipes import load_recipe

    dpa = load_recipe(f"{folder}/dpa-grpo.yaml").to_dict()
    mixes = set()
    for path in sorted(Path(folder).glob("hcm-grpo*.yaml")):
        r = load_recipe(path).to_dict()
        mixes.add(r["hcm"]["late_mix"])
        HCMConfig.from_dict(r["hcm"])
        assert r["training"]["num_train_epochs"] == 1
        for key in set(dpa) - {"arm", "description", "hcm", "training", "source", "output_dir"}:
            assert r[key] == dpa[key], (path, key)
        skip = {"num_train_epochs", "save_strategy", "save_steps"}
        assert {k: v for k, v in r["training"].items() if k not in skip} == \
            {k: v for k, v in dpa["training"].items() if k not in skip}, path
    assert mixes == set(LATE_MIXES)
