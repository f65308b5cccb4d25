# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · GRPO, DPA-GRPO and HCM-GRPO (Tables 6 and 7)
#
# From the CoT SFT model, reinforcement learning with TRL's `GRPOTrainer`. For each prompt the
# model samples **G = 4** replies; each gets a reward; the advantage of a reply is its reward
# minus the group mean, divided by the group's standard deviation. Replies better than their
# siblings are made more likely. A KL term (beta 0.04) keeps the policy near the SFT model.
#
# Three variants, each one YAML recipe:
#
# - **GRPO**: reward = format + binary accuracy (1 when the answer equals the label exactly);
# - **DPA-GRPO**: the accuracy reward becomes *dynamic proportional accuracy*: a reply naming a
#   subset of the acceptable candidates earns len(reply)/len(label) (partial credit), any wrong
#   letter earns 0;
# - **HCM-GRPO**: *hard cases mining*. The SFT model is run over the training split; what it gets
#   wrong is *hard*. DPA-GRPO trains 3 epochs on all data, then 2 more epochs on all data **plus
#   the hard cases again**. Table 7 asks what those late epochs should contain: hard only, easy
#   only, all, all + as many random extra samples as there are hard ones, or all + hard.

# %% tags=["parameters"]
SMALL = True            # True: CPU, synthetic data, the lab's pretrained small InternVL, minutes. False: GPU settings below.
QUICK = False           # True: the CI settings (a tiny model, a few samples and steps): a smoke run.
DATA_DIR = "data/lab"
RUN_DIR = "runs/lab"    # 03 trained RUN_DIR/sft
SEED = 0
# GPU settings (SMALL = False): InternVL3-2B-hf with the paper's recipes (Table 2: G=4, beta 0.04, top-k 3, top-p 0.8).
GPU_RECIPE_SET = "paper"

# %%
import json
import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from labkit.notebooks import PAPER, enter_project, lab_recipe_set, profile

ROOT = enter_project()
P = profile(SMALL, QUICK)
if not SMALL:
    P.recipe_set = GPU_RECIPE_SET
DATA = Path(DATA_DIR)
RUN = Path(RUN_DIR)
SYNTH = DATA / "synth"
assert (RUN / "sft" / "done.json").exists(), f"{RUN}/sft is not finished: run 03_sft first"
rs = lab_recipe_set(P, SYNTH, RUN)

# %% [markdown]
# ## The rewards, by hand
#
# The rewards reuse the evaluation metric's parser (`labkit.rewards` on `labkit.metrics`), so the
# model is trained on exactly what it is scored on. Look at the partial credit: for the label `AC`,
# answering `A` alone is *correct* for the metric but earns only 0.5 from DPA: it is safe but
# incomplete, and DPA pushes towards naming every acceptable candidate.

# %%
from labkit.rewards import REWARDS

replies = ["<think>B is warped, D floats.</think><answer>AC</answer>",
           "<think>B is warped.</think><answer>A</answer>",
           "<think>...</think><answer>AB</answer>",
           "AC"]
labels = ["AC"] * len(replies)
table = pd.DataFrame({name: REWARDS[name](replies, answer=labels) for name in ("format", "accuracy", "dpa")}, index=replies)
display(table)
assert table["dpa"].tolist() == [1.0, 0.5, 0.0, 1.0] and table["accuracy"].tolist() == [1.0, 0.0, 0.0, 1.0]
assert table["format"].tolist() == [1.0, 1.0, 1.0, 0.0]

# %% [markdown]
# ## Mine the hard cases, train the arms
#
# The `mine` arm evaluates the SFT model on `train` (`labkit.hcm.mine_hard`) and writes
# `RUN_DIR/mine/hard_cases.jsonl` (the annotation store imports it in notebook 06). The HCM arms
# lay the whole schedule (early epochs + late epochs) out as ONE trainer epoch through a custom
# sampler, so all arms get the same optimizer, learning-rate schedule and step budget per epoch.

# %%
from labkit.ablate import Runner

ARMS = ["mine", "grpo", "dpa-grpo", "hcm-grpo", "hcm-grpo-hard", "hcm-grpo-easy", "hcm-grpo-all", "hcm-grpo-all-random"]
runner = Runner(rs, RUN, seed=SEED, progress=not QUICK)
runner.run(["mine"], report=False)
mining = json.loads((RUN / "mine" / "mining.json").read_text())
print(f"mined: {mining['hard']} hard, {mining['easy']} easy of {mining['n']} "
      f"(paper, InternVL3-2B: {PAPER['hard_easy_2b']['hard']} hard, {PAPER['hard_easy_2b']['easy']} easy of 1044)")
assert mining["hard"] + mining["easy"] == mining["n"] > 0
hard_lines = [json.loads(l) for l in (RUN / "mine" / "hard_cases.jsonl").read_text().splitlines()]
assert len(hard_lines) == mining["n"] and sum(h["hard"] for h in hard_lines) == mining["hard"]

# A late mix needs samples of its kind: with no easy (or no hard) case that arm has nothing to draw.
skip = {"hcm-grpo-easy"} if mining["easy"] == 0 else set()
skip |= {"hcm-grpo-hard", "hcm-grpo", "hcm-grpo-all-random"} if mining["hard"] == 0 else set()
if skip:
    print("skipped (nothing to draw):", sorted(skip))
results = runner.run([a for a in ARMS if a not in skip], report=False)
arms = results["arms"]

# %%
from labkit.metrics import format_table

print(format_table({a: arms[a] for a in ["sft", *ARMS] if a in arms}))
for a in ARMS[1:]:
    if a in skip:
        continue
    r = arms[a]
    assert math.isfinite(r["overall"]) and 0 <= r["overall"] <= 100, a
    assert r["random_baseline"] == arms["sft"]["random_baseline"], a   # same test samples for every arm
    assert (Path(r["model"]) / "config.json").exists(), a
if SMALL and not QUICK:
    # Full small mode (docs/training.md): DPA-GRPO and HCM-GRPO keep what SFT learned: well above
    # random, verdicts that still rank the candidates. Plain GRPO (format + accuracy) is not
    # asserted: in the measured demo run it collapsed to answering N on every test sample.
    for a in ("dpa-grpo", "hcm-grpo"):
        r = arms[a]
        assert r["overall"] >= r["random_baseline"] + 10, (a, r["overall"], r["random_baseline"])
        assert r["auc"]["overall"] >= 0.7, (a, r["auc"])

# %% [markdown]
# ## Table 6: from the SFT model

# %%
t6 = pd.DataFrame([{"arm": a, "ours": arms[a]["overall"], "unparsed": arms[a]["unparsed"],
                    "paper 1B": PAPER["table6"][a][0], "paper 2B": PAPER["table6"][a][1]}
                   for a in ["sft", "grpo", "dpa-grpo", "hcm-grpo"] if a in arms]).set_index("arm")
display(t6.round(2))

# %% [markdown]
# ## Table 7: what the late epochs contain

# %%
mixes = {"hcm-grpo-hard": "hard", "hcm-grpo-easy": "easy", "hcm-grpo-all": "all",
         "hcm-grpo-all-random": "all+random", "hcm-grpo": "all+hard"}
t7 = pd.DataFrame([{"arm": a, "late epochs": m, "ours": arms[a]["overall"], "paper 2B": PAPER["table7"][m]}
                   for a, m in mixes.items() if a in arms]).set_index("arm")
display(t7.round(2))

fig = go.Figure()
fig.add_bar(x=t7["late epochs"], y=t7["ours"], name="ours", text=t7["ours"].round(1), textposition="outside")
fig.add_bar(x=t7["late epochs"], y=t7["paper 2B"], name="paper, InternVL3-2B")
fig.add_hline(y=arms["sft"]["random_baseline"], line_dash="dash", annotation_text="random baseline")
fig.update_layout(barmode="group", title="Table 7: the data of the late epochs", yaxis_title="score (%)", height=380)
fig.show()

# %% [markdown]
# **What to notice (paper).** Hard cases alone (58.76) or easy cases alone (59.40) are *worse* than
# all data (59.83): the model needs the whole distribution. Extra random samples help a little
# (60.90); extra *hard* samples help most (64.74). The gain is from what is repeated, not from
# more steps. In small mode the differences between arms are within noise of a few dozen test
# samples; run `SMALL = False` on a GPU for the paper's scale.

# %% [markdown]
# ## What each HCM arm actually trained on
#
# `hcm_epochs.jsonl` logs the logical epochs of each HCM arm: the phase, the mix and how many hard
# and easy prompts were drawn. This is where the arms differ, so it is worth checking.

# %%
rows = []
for a, m in mixes.items():
    if a not in arms:
        continue
    for e in (json.loads(l) for l in (RUN / a / "hcm_epochs.jsonl").read_text().splitlines()):
        rows.append({"arm": a, "epoch": e["epoch"], "phase": e["phase"], "mix": e["mix"], "hard": e["hard"], "easy": e["easy"]})
epochs = pd.DataFrame(rows)
display(epochs)
late = epochs[epochs.phase == "late"].set_index("arm")
early = epochs[epochs.phase == "early"].groupby("arm")[["hard", "easy"]].mean()
if "hcm-grpo-hard" in late.index:
    assert (late.loc[["hcm-grpo-hard"], "easy"] == 0).all()
if "hcm-grpo-easy" in late.index:
    assert (late.loc[["hcm-grpo-easy"], "hard"] == 0).all()
if "hcm-grpo" in late.index:   # all + hard: the hard cases come back on top of all data
    assert late.loc[["hcm-grpo"], "hard"].min() >= early.loc["hcm-grpo", "hard"]
    if mining["hard"] >= 4:       # (with one or two hard cases, dropping an incomplete chunk can hide one)
        assert late.loc[["hcm-grpo"], "hard"].min() > early.loc["hcm-grpo", "hard"]

fig = go.Figure()
labels_x = [f"{r.arm}<br>epoch {r.epoch} ({r.phase})" for r in epochs.itertuples()]
fig.add_bar(x=labels_x, y=epochs["hard"], name="hard prompts")
fig.add_bar(x=labels_x, y=epochs["easy"], name="easy prompts")
fig.update_layout(barmode="stack", title="Prompts drawn per logical epoch", height=420)
fig.show()

# %% [markdown]
# ## Reward curves
#
# The mean reward per logged step (format + accuracy or dpa). A flat line at zero means no reply in
# any group was rewarded: no advantage, no gradient. That is Table 4's `grpo-base` failure, and it
# also happens to a cold start that is too short (quick mode).

# %%
from labkit.report import reward_curve

fig = go.Figure()
for a in ["grpo", "dpa-grpo", *mixes]:
    if a not in arms:
        continue
    steps, rewards = reward_curve(RUN / a)
    assert all(math.isfinite(r) and 0 <= r <= 2 for r in rewards), a   # format (0/1) + accuracy or dpa (0..1)
    fig.add_scatter(x=steps, y=rewards, mode="lines+markers", name=a)
fig.update_layout(title="Mean reward per step", xaxis_title="step", yaxis_title="reward", height=380)
fig.show()

# %% [markdown]
# Next: `05_evaluate` compares everything in one Table 3-style view, per dimension, and looks at the
# cases the best model still gets wrong.
