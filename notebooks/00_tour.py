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
# # 00 · A tour of the task
#
# **Image aesthetic reasoning.** A shop generates product photos with a diffusion model: the
# product (a medicine box, a bottle, ...) is cut out of its packshot and a new scene is painted
# around it. Most results are unusable: in the paper only **8.5 %** of generated images were
# normal. A reviewer sees the *original* and four *candidates* A–D and names the acceptable ones:
# `AC`, `BCD`, or `N` when none passes. The lab teaches a small vision-language model to do that
# review, reasoning first (`<think>…</think>`) and then answering (`<answer>AC</answer>`).
#
# In this notebook: the four failure dimensions, a browser over procedural samples, the metric, and
# the random baseline every later number must beat. Nothing is trained; it takes seconds.
#
# The notebooks run in order and share one data folder (`DATA_DIR`) and one run folder (`RUN_DIR`):
# 01 writes data, 02 annotates it, 03–04 train, 05 evaluates, 06 opens the app.

# %% tags=["parameters"]
# Parameters: papermill (and `python -m labkit.notebooks run`) override these.
SMALL = True            # True: CPU, synthetic data, a small random-init model, minutes. False: the GPU settings below.
QUICK = False           # True: the CI settings (a few samples and steps): a smoke run, the numbers mean little.
DATA_DIR = "data/lab"   # shared data folder (relative to the repository root): 01 writes it, 02-06 read it
RUN_DIR = "runs/lab"    # training and evaluation outputs of 03-06
SEED = 0
# GPU settings (used when SMALL = False): the paper's models and recipes (Table 2).
GPU_BASE_MODEL = "InternVL3-2B-hf"   # or InternVL3-1B-hf
GPU_RECIPE_SET = "paper"             # recipes/sets/paper.yaml -> recipes/paper/2b/*.yaml

# %%
import json
from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go

from labkit.notebooks import PAPER, enter_project, profile

ROOT = enter_project()          # recipes and data paths are relative to the repository root
P = profile(SMALL, QUICK)
print(f"mode: {P.name}; repository: {ROOT}")

# %% [markdown]
# ## The four failure dimensions
#
# | dimension | what goes wrong | example |
# |---|---|---|
# | **appearance deformation** | the product itself changed: shape, colour, text, quantity | a warped box, a second bottle |
# | **physical shadow** | light and shadow disagree | a shadow pointing towards the window, no shadow at all |
# | **placement layout** | the product does not stand where it could | floating, sinking into the table, tilted, giant |
# | **extension rationality** | the scene invents things the original never had | extra pills, decorations, a duplicated product |
#
# Requirement 1 of the paper's prompt is the strictest: *any* change to the product disqualifies a
# candidate, however pretty. The lab's procedural generator (`labkit.synth`) draws each defect on
# purpose, so every label is exact. Let us draw a few samples in memory (01 writes real folders).

# %%
from labkit.cli.show import render_sheet
from labkit.synth.sample import SynthConfig, render_sample, split_plan

n_browse = 6 if QUICK else 16
config = SynthConfig(seed=SEED, size=96 if QUICK else 160)
plan = split_plan("test", n_browse, config)
samples = [render_sample(i, "test", config, focus, k) for i, (focus, k) in enumerate(plan)]
for s in samples[:5]:
    print(s["id"], "answer:", s["answer"], " dimension:", s["dimension"], " defects:", s["candidate_defects"])
assert all(len(s["candidates"]) == 4 for s in samples)

# %% [markdown]
# ## A sample browser
#
# Move the slider. Each sheet shows the original and A–D with the defect tags the generator drew
# (`-` = acceptable). Try to spot the defect *before* reading the tag: subtle ones (low severity)
# are hard for people too, and a model learns exactly those boundaries. The reasoning below the
# sheet is the *oracle chain of thought*, written from the ground truth: the kind of text the model
# will be trained to produce.

# %%
import io

import ipywidgets as widgets
from IPython.display import display


def sheet_png(sample, tile=150):
    buf = io.BytesIO()
    render_sheet(sample, tile=tile).save(buf, format="PNG")
    return buf.getvalue()


slider = widgets.IntSlider(value=0, min=0, max=len(samples) - 1, description="sample")
picture = widgets.Image(format="png")
info = widgets.HTML()


def show(index):
    s = samples[index]
    picture.value = sheet_png(s)
    info.value = (f"<b>{s['id']}</b> · answer <code>{s['answer']}</code> · dimension <i>{s['dimension']}</i>"
                  f"<br><small>{s['cot']}</small>")


slider.observe(lambda change: show(change["new"]), names="value")
show(0)
browser = widgets.VBox([slider, picture, info])
display(browser)

# %%
# The browser really follows the slider (what a student sees when moving it).
slider.value = 2
assert samples[2]["id"] in info.value and picture.value == sheet_png(samples[2])

# %% [markdown]
# ## The metric
#
# The paper's rule (Section 5.1): a response is **correct when it names at least one option and
# every option it names is acceptable**. Naming a subset of the acceptable candidates is enough;
# naming one bad candidate is not; `N` is right only when nothing passes. `labkit.metrics` is the
# one implementation: evaluation, the GRPO rewards and the app all call it.

# %%
import pandas as pd

from labkit.data import DIMENSIONS
from labkit.metrics import is_correct, parse_answer, random_baseline, score

cases = [
    ("<think>B is warped.</think><answer>AC</answer>", "AC"),
    ("<think>...</think><answer>A</answer>", "AC"),        # a subset: correct
    ("<think>...</think><answer>AB</answer>", "AC"),       # B is not acceptable: wrong
    ("<think>...</think><answer>N</answer>", "AC"),        # N when something passes: wrong
    ("<think>...</think><answer>N</answer>", "N"),
    ("the model rambles without an answer tag", "B"),      # unparsed: wrong
]
table = pd.DataFrame([{"response": r, "parsed": parse_answer(r), "label": l, "correct": is_correct(parse_answer(r), l)}
                      for r, l in cases])
display(table)
assert table["correct"].tolist() == [True, True, False, False, True, False]

# %% [markdown]
# ## The random baseline
#
# A guesser that picks one of the five choices (A, B, C, D, N) at random is right with probability
# *(number of acceptable letters) / 5* (for `N` labels: 1/5). Averaged over a test set that is
# **mean label length / 5**: an expectation, not a simulation. The paper's test set has mean
# length 1.7136, hence **34.27 %**. The generator's default mix was chosen to land near that
# (about 1.72). Below: the expectation on many drawn test labels, and a simulated guesser that
# agrees with it. Every score later in the lab is shown against this line.

# %%
import numpy as np

from labkit.synth.sample import build_spec

n_labels = 1000 if QUICK else 4000
big_plan = split_plan("test", n_labels, config)
labels, dims = [], []
for i, (focus, k) in enumerate(big_plan):
    spec, _ = build_spec(i, "test", config, focus, k)
    labels.append(spec.answer)
    dims.append(focus)
expected = random_baseline(labels)
rng = np.random.default_rng(SEED)
guesses = rng.choice(list("ABCDN"), size=len(labels))
simulated = 100 * np.mean([is_correct(g, l) for g, l in zip(guesses, labels)])
per_dim = score(list(guesses), labels, dims)
print(f"mean label length {np.mean([len(l) for l in labels]):.4f} (paper {PAPER['mean_label_length']})")
print(f"random baseline: expected {expected:.2f} %, simulated {simulated:.2f} %, paper {PAPER['random_baseline']} %")
assert 30 < expected < 38, expected
assert abs(simulated - expected) < 4, (simulated, expected)   # ~1.5 standard errors at n=1000

# %%
fig = go.Figure()
dim_names = list(DIMENSIONS)  # normal, then the four defect dimensions (labkit.data owns the names)
share = [100 * dims.count(d) / len(dims) for d in dim_names]
fig.add_bar(x=dim_names, y=share, name="share of samples (%)")
fig.add_bar(x=dim_names, y=[per_dim["random_per_dimension"][d] for d in dim_names], name="random baseline (%)")
fig.add_bar(x=dim_names[1:], y=PAPER["table3"]["random"][1:], name="paper's random baseline (%)")
fig.update_layout(barmode="group", title="Generated test mix: dimensions and their random baselines",
                  yaxis_title="%", height=380)
fig.show()

# %% [markdown]
# **What to notice.** The `normal` samples (all four acceptable) have an 80 % random baseline: any
# letter is right. Dimensions with fewer acceptable candidates are harder to guess, which is why
# per-dimension scores must always be read against their own baseline. Appearance deformation is
# the most common failure, as in the paper.
#
# Next: `01_generate` writes the datasets this lab trains on and runs the paper's FLUX pipeline.
