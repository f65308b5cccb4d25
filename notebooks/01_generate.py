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
# # 01 · Generate: procedural data and the FLUX side-by-side pipeline
#
# Two sources of screening data:
#
# 1. **Procedural** (`labkit.synth`): products drawn in scenes with defects placed on purpose, so
#    every label (answer, dimension, per-candidate tags) is exact. This is what the CPU lab trains on.
# 2. **The paper's generation pipeline** (`labkit.generate`, Section 3.1): segment the product,
#    place it on a white canvas (the *placeholder*), put a reference background beside it (the
#    *initial image*), and let FLUX.1 Fill redraw the white area in the reference's style (FLUX.1
#    Redux conditions on the reference). Four seeds, four candidates. In small mode the FLUX
#    components are *tiny random* models of the real diffusers classes, so the candidates look
#    like noise: the geometry, masks, seeds and files are the real pipeline's. On a GPU the same
#    code runs FLUX.1-Fill-dev and FLUX.1-Redux-dev (`recipes/generate/paper.yaml`).
#
# This notebook writes `DATA_DIR/synth` (train / test / pseudo_label) and `DATA_DIR/generated`
# (an unlabelled `exploration` split): the data of every later notebook.

# %% tags=["parameters"]
SMALL = True            # True: CPU, synthetic data, tiny FLUX, minutes. False: the GPU settings below.
QUICK = False           # True: the CI settings (a few samples).
DATA_DIR = "data/lab"   # shared data folder: this notebook writes it
RUN_DIR = "runs/lab"
SEED = 0
WEAK_LABEL_ACCURACY = 0.4   # pseudo_label split: share of right weak labels (the paper's automatic CoT: 38.25 %)
ORIGINALS_DIR = ""          # product photos on a plain background; empty: the procedural originals
# GPU settings (SMALL = False): real FLUX.1 Fill + Redux, 512 px halves, 50 steps.
GPU_GENERATE_RECIPE = "recipes/generate/paper.yaml"

# %%
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from labkit.notebooks import PAPER, contact_sheet, enter_project, profile

ROOT = enter_project()
P = profile(SMALL, QUICK)
DATA = Path(DATA_DIR)
SYNTH = DATA / "synth"
print(f"mode {P.name}: data -> {DATA.resolve()}")

# %% [markdown]
# ## 1. Procedural data
#
# `make_dataset` writes one Parquet file per split in the lab's schema (`labkit/data.py`). The
# `pseudo_label` split imitates the paper's weak automatic annotations: with
# `pseudo_label_accuracy` below 1, some samples get one candidate's verdict flipped (a missed or an
# invented defect) in their answer, caption and CoT, and the truth moves to `meta["truth"]`. That
# is the data of the cold start's stage 1.1 (notebook 03).

# %%
from labkit.data import dataset_info, load_split
from labkit.synth import make_dataset

if SYNTH.exists():
    shutil.rmtree(SYNTH)          # this notebook owns DATA_DIR/synth: a rerun rewrites it
make_dataset(SYNTH, **P.synth, pseudo_label_accuracy=WEAK_LABEL_ACCURACY, progress=False)
info = dataset_info(SYNTH)
display(pd.DataFrame(info).T[["n", "labelled", "mean_answer_length", "none_answers", "random_baseline"]])
assert info["train"]["n"] == P.synth["train"] and info["test"]["n"] == P.synth["test"]
assert info["pseudo_label"]["n"] == P.synth["pseudo"]

# %% [markdown]
# How good are the weak labels? The truth is in `meta`, so we can score them with the paper's
# metric, exactly as the paper scored Qwen-VL-Max's automatic answers (38.25 %). The score is above
# the share of *exactly* right weak labels: a weak label that only misses an acceptable candidate
# names a subset of the truth, and the paper's metric counts a subset as correct.

# %%
from labkit.metrics import score

pseudo = load_split(SYNTH, "pseudo_label")
truth = [json.loads(m)["truth"] for m in pseudo["meta"]]
weak = score(pseudo["answer"], [t["answer"] for t in truth], [t["dimension"] for t in truth])
print(f"weak-label accuracy of pseudo_label: {weak['overall']:.1f} % on {weak['n']} samples "
      f"(exactly right: {100 * WEAK_LABEL_ACCURACY:.0f} % in expectation; paper's automatic CoT {PAPER['weak_cot_accuracy']} %)")
assert 0 <= weak["overall"] <= 100

# %%
from labkit.cli.show import render_sheet

test = load_split(SYNTH, "test")
display(render_sheet(test[0], tile=128))
print(test[0]["cot"])

# %% [markdown]
# ## 2. The paper's pipeline, step by step
#
# The originals here are the procedural originals (a product on white), saved as PNGs; point
# `ORIGINALS_DIR` at your own packshots instead. The background gallery is drawn by the scene
# generator (24 scenes; the paper used 20+).

# %%
from labkit.generate import load_generate_recipe, prepare_original, default_gallery, run_generation

GENERATED = DATA / "generated"
if ORIGINALS_DIR:
    originals_dir = Path(ORIGINALS_DIR)
else:
    originals_dir = DATA / "originals"
    originals_dir.mkdir(parents=True, exist_ok=True)
    for i in range(P.originals):
        test[i]["original"].save(originals_dir / f"{test[i]['id']}.png")
# Small mode: the tiny random FLUX models live in DATA_DIR too (built on first use, about 10 s).
tiny = {"fill_model": str(DATA / "models" / "tiny-flux" / "fill"), "redux_model": str(DATA / "models" / "tiny-flux" / "redux")}
cfg = load_generate_recipe(P.generate_recipe if SMALL else GPU_GENERATE_RECIPE, {"seed": SEED, **(tiny if SMALL else {})})
print({k: getattr(cfg, k) for k in ("fill_model", "redux_model", "size", "steps", "guidance", "layouts")})

# %% [markdown]
# First the parts that need no model: segmentation, a random layout (top-bottom or left-right),
# the placeholder, and the side-by-side initial image with its mask. **Mask convention** (the
# paper's): black = keep, white = redraw. The whole left half (the reference) is kept, and so is
# the product; only the scene around the product is painted. The paper found that giving the
# model only the right half rendered poorly: the reference beside it is what carries the style.

# %%
if GENERATED.exists():
    shutil.rmtree(GENERATED)      # a rerun starts clean (the generator itself resumes interrupted runs)
gallery_dir = default_gallery(GENERATED, cfg.gallery_size, cfg.size, cfg.seed)
gallery = sorted(gallery_dir.glob("*.png"))
first = sorted(originals_dir.glob("*.png"))[0]
prepared = prepare_original(first, first.stem, gallery, cfg)
display(contact_sheet([prepared["original"], prepared["placeholder"], prepared["reference"], prepared["initial"], prepared["mask"]],
                      ["original", "placeholder", "reference", "initial = reference | placeholder", "mask"], tile=128))
print("layout:", prepared["layout"].to_dict(), " candidate seeds:", prepared["seeds"]["candidates"])

mask = np.asarray(prepared["mask"])
size = cfg.size
assert mask.shape == (size, 2 * size)
assert (mask[:, :size] == 0).all()                                   # reference half: kept
assert (mask[:, size:] == 255).mean() > 0.3                          # most of the right half: redrawn
kept = mask[:, size:] == 0                                           # the product's pixels: kept
assert kept.any() and (np.asarray(prepared["placeholder"])[~kept] == 255).all()  # the rest of the placeholder is white
assert np.array_equal(np.asarray(prepared["initial"])[:, :size], np.asarray(prepared["reference"].convert("RGB")))

# %% [markdown]
# Now the whole run: FLUX Fill + Redux, one seeded call per candidate (a candidate depends only on
# its seed), the right half of each result is a candidate. The run writes every intermediate image
# to `work/<id>/`, one `done/<id>.json` per original (an interrupted run resumes), and the samples
# as an unlabelled `exploration` split: the paper's 115,809-sample split that nobody labelled.

# %%
summary = run_generation(originals_dir, GENERATED, cfg, limit=P.originals)
print(summary)
gen = load_split(GENERATED, "exploration")
assert summary["samples"] == len(gen) == P.originals
for sid in gen["id"]:
    work = GENERATED / "work" / sid
    for name in ("original", "reference", "placeholder", "mask", "initial", *[f"candidate_{l}" for l in "ABCD"]):
        assert (work / f"{name}.png").exists(), (sid, name)

# %%
for sid in gen["id"]:
    work = GENERATED / "work" / sid
    names = ["placeholder", "mask", "initial", "candidate_A", "candidate_B", "candidate_C", "candidate_D"]
    print(sid)
    display(contact_sheet([work / f"{n}.png" for n in names], names, tile=96))

# %% [markdown]
# **What to notice.** With the tiny random FLUX the candidates are noise: even the kept product
# does not survive the random autoencoder's round trip. What is real is everything around it: the
# initial image and mask the model is given, one seed per candidate (four seeds, four different
# candidates), the files and the resumable run. With FLUX.1-dev weights on a GPU (`SMALL = False`)
# the same calls produce scenes in the reference's style, and most of them fail on one of the four
# dimensions: that is why a screener is needed at all.

# %%
cands = [np.asarray(gen[0]["candidates"][i].convert("RGB"), dtype=np.int16) for i in range(4)]
differences = [np.abs(cands[0] - c).mean() for c in cands[1:]]
print("mean pixel difference of B, C, D from A:", [round(float(d), 1) for d in differences])
assert all(d > 0 for d in differences)   # four seeds, four different candidates

# %% [markdown]
# Next: `02_annotate` adds chains of thought to this data and labels it in the annotation store.
