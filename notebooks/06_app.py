# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The app, and the hard-case loop
#
# The trained screener in the lab's Gradio app (`labkit/app/`): a **Screen** tab that streams the model's
# reasoning over an original and four candidates, token by token, and splits it per candidate; an
# **Annotate** tab where people label samples from queues of the annotation store, with keyboard
# shortcuts. Then the loop the paper implies: the hard cases mined from the model (notebook 04) go
# to annotators, their labels are exported as training data, and the model is trained again.
#
# Everything below calls the app's pure handler functions (`labkit.app.handlers`), the same code the
# buttons call, so it runs without a server. With `LAUNCH_APP = True` the app also opens inline,
# bound to 127.0.0.1.

# %% tags=["parameters"]
SMALL = True            # True: CPU, synthetic data, the small model trained in 03-04. False: GPU settings below.
QUICK = False           # True: the CI settings.
DATA_DIR = "data/lab"
RUN_DIR = "runs/lab"    # 03-04 trained here; 04 mined RUN_DIR/mine/hard_cases.jsonl
SEED = 0
LAUNCH_APP = True       # open the app inline (a local server on 127.0.0.1); batch runs pass False
# GPU settings (SMALL = False): the same app serves the InternVL3 model trained by the paper recipes.
GPU_RECIPE_SET = "paper"

# %%
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import display

from labkit.notebooks import enter_project, profile

ROOT = enter_project()
P = profile(SMALL, QUICK)
DATA = Path(DATA_DIR)
RUN = Path(RUN_DIR)
SYNTH = DATA / "synth"
MODEL = next(RUN / a / "final" for a in ("hcm-grpo", "dpa-grpo", "sft") if (RUN / a / "final" / "config.json").exists())
HARD = RUN / "mine" / "hard_cases.jsonl"
assert HARD.exists(), "run 04_grpo_dpa_hcm first (it mines the hard cases)"
print("model:", MODEL)

# %% [markdown]
# ## The app, built in the notebook
#
# `build_demo(screener, store, index)` returns the Gradio `Blocks`. The screener loads the model
# once; the store is the SQLite file of notebook 02; the index serves the dataset's images. The
# mined responses let annotators see what the model said about each hard case.

# %%
import gradio as gr

from labkit.app import handlers as H
from labkit.app.ui import build_demo, launch_kwargs
from labkit.store import AnnotationStore

# The generation settings every arm was evaluated with (03-04), so the app and the retrained model match them.
EVAL = {k: v for k, v in json.loads((RUN / "results.json").read_text())["evaluation"].items()
        if k not in ("split", "swap_control")}  # swap_control: which arms the runner re-evaluates, not an evaluate option
screener = H.Screener.load(MODEL, max_new_tokens=EVAL.get("max_new_tokens", 256))
store = AnnotationStore(DATA / "annotations.sqlite")
index = H.SampleIndex(SYNTH)
for split in index.splits:
    store.register_split(SYNTH, split, dataset=index.name)
newly_hard = store.import_hard_cases(HARD, index.name)
mined = H.read_mined_responses(HARD)
demo = build_demo(screener, store, index, annotator="student", mined=mined)

api = {fn.api_name for fn in demo.fns.values() if fn.api_visibility != "private"}   # the API gradio_client sees
print("events:", sorted(api))
assert isinstance(demo, gr.Blocks)
assert {"screen", "load_queue", "annotate", "undo", "import_hard_cases"} <= {a.strip("/") for a in api}

# %%
if LAUNCH_APP:
    demo.queue().launch(server_name="127.0.0.1", inline=True, prevent_thread_lock=True, **launch_kwargs())

# %% [markdown]
# ## Screening one sample, as the Screen tab does
#
# `screen_stream` yields the growing reply; each step is what the page shows (the reasoning so far,
# the answer once parsed, and one card per candidate). We keep the last step.

# %%
from labkit.cli.show import render_sheet

sample_id = index.ids("test")[0]
sample = index.get(sample_id)
display(render_sheet(sample, tile=120))
steps = list(H.screen_stream(screener, index.images(sample_id)))
final = steps[-1]
print(f"{len(steps)} streamed updates; label {sample['answer']}, model's answer {final.answer_text()}")
print(final.reasoning[:600])
for letter, card in final.per_candidate.items():
    print(f"--- {letter}: {card[:200]}")
assert final.done and len(steps) >= 2 and set(final.per_candidate) == set("ABCD")

# %% [markdown]
# ## The hard-case loop
#
# 1. **Mining** (notebook 04): the SFT model over `train`; wrong answers are hard cases.
# 2. **Queue**: the store imports them (`import_hard_cases`); the Annotate tab's `hard` queue serves them.
# 3. **Labels**: annotators tick the acceptable candidates and tag the defects. Here two *simulated*
#    annotators label the queue through the same handler the Annotate button calls
#    (`save_label`): one copies the truth, the other misses a defect now and then.
# 4. **Export**: agreed labels become a new dataset folder (ties are held back).
# 5. **Retraining**: a short SFT from the current model on the exported data, then the same
#    evaluation. (The paper feeds hard cases into GRPO's late epochs instead; that is the
#    `hcm-grpo` recipe with the exported folder as its data.)

# %%
queue = store.queue("hard", dataset=index.name)
mined_hard = {r["id"] for r in map(json.loads, HARD.read_text().splitlines()) if r["hard"]}
print(f"hard queue: {len(queue)} samples (mined hard now: {len(mined_hard)}; newly imported: {newly_hard})")
assert mined_hard <= {k.sample_id for k in queue}   # (a store kept from an earlier run may hold older hard cases too)

rng = np.random.default_rng(SEED)
for name in ("dana", "eli"):
    store.add_annotator(name)
labelled = 0
for key in queue:
    s = index.get(key.sample_id)
    truth_tags = s["candidate_defects"]
    accepted = [l for l, t in zip("ABCD", truth_tags) if not t] or ["N"]
    tags = [list(t) for t in truth_tags]
    H.save_label(store, "dana", f"{key.dataset}/{key.sample_id}", accepted, tags, cot=s["cot"], seconds=12.0)
    # Blind: eli's view of the item shows nothing of dana's label.
    assert H.item_view(store, index, "eli", f"{key.dataset}/{key.sample_id}").others == {}
    cot = s["cot"]
    if rng.random() < 0.2 and len(accepted) < 4 and accepted != ["N"]:
        miss = next(i for i, t in enumerate(tags) if t)                    # eli misses one defect
        accepted, tags[miss] = sorted(accepted + ["ABCD"[miss]]), []
        cot = ""   # the dataset's reasoning now contradicts eli's answer: the store would refuse it
    H.save_label(store, "eli", f"{key.dataset}/{key.sample_id}", accepted, tags, cot=cot, seconds=15.0)
    labelled += 1

progress = store.progress(index.name)
print({k: progress[k] for k in ("samples", "labelled", "agreed", "ties", "hard", "hard_labelled")})
assert progress["hard_labelled"] == progress["hard"] == len(queue)
H.progress_figure(progress, title="Store after labelling the hard queue").show()
H.agreement_figure(store.agreement(index.name), title="Agreement").show()

# %%
export_dir = DATA / "hard-labelled"
if export_dir.exists():
    shutil.rmtree(export_dir)
exported = store.export_split(index.name, export_dir, split="train")
print(exported)
assert exported["exported"] > 0 and (export_dir / "train.parquet").exists()

# %% [markdown]
# **Retraining.** The recipe is the CoT SFT recipe of notebook 03 with three overrides: start from
# the current model, train on the exported labels, write to `RUN_DIR/sft-relabelled`.

# %%
from labkit.evaluate import evaluate
from labkit.recipes import load_recipe
from labkit.sft import run_sft

recipe_path = "recipes/small/sft.yaml" if SMALL else f"recipes/{GPU_RECIPE_SET}/2b/sft.yaml"
overrides = {"run_dir": str(RUN), "arm": "sft-relabelled", "model": str(RUN / "sft" / "final"), "data": str(export_dir)}
overrides.update(P.sft_set)
recipe = load_recipe(recipe_path, overrides)
final = run_sft(recipe)
before = json.loads((RUN / "sft" / "done.json").read_text())
after = evaluate(str(final), SYNTH, "test", image_size=P.image_size, out_dir=RUN / "sft-relabelled" / "eval",
                 seed=SEED, progress=False, **EVAL)
comparison = pd.DataFrame({"sft (03)": {"overall": before["overall"], "unparsed": before["unparsed"]},
                           "sft + relabelled hard cases": {"overall": after["overall"], "unparsed": after["unparsed"]}}).T
display(comparison)
assert (final / "config.json").exists() and math.isfinite(after["overall"]) and after["n"] == before["n"]
store.close()

# %% [markdown]
# **What to notice.** The loop costs people time only where the model is wrong: the hard queue is
# a fraction of the data, and the agreement chart shows how much to trust its labels before they
# are used. In small mode one short round moves the score little; on real data the paper's hard
# cases (434 of 1,044) were worth +4.9 points over all-data DPA-GRPO (Table 7).
#
# To serve the app outside the notebook: `make app`, or
# `labkit app --model RUN_DIR/hcm-grpo/final --store DATA_DIR/annotations.sqlite --data DATA_DIR/synth --hard-cases RUN_DIR/mine`.
