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
# # 02 · Annotate: automatic, answer-driven and oracle chains of thought; the annotation store
#
# A reasoning model needs reasoning to imitate. The paper (Section 3.2) compares three sources:
#
# | method | who writes the CoT | quality in the paper |
# |---|---|---|
# | **automatic, progressive** | a strong VLM (Qwen-VL-Max) describes each image, then reasons over its own descriptions and answers | its answers were right **38.25 %** of the time: *weak* labels |
# | **answer-driven** | the VLM is *given* the human answer and asked for the reasoning that reaches it | far better training data (Table 5: 51.07 vs 34.83) |
# | **manual** | reviewers mark the acceptable candidates | the ground truth; slow and costly |
#
# The lab adds **oracle** CoT: for procedural data the generator knows every defect, so it writes
# the reasoning from the truth (`labkit.annotate`, method `oracle`).
#
# **The judge in this notebook.** With no API key we use a *local* judge: `local:<folder>`, a
# small random-initialised InternVL built here (`labkit.models.build_model`). It runs the exact
# code path of a real judge (prompts, two-step captions-then-reasoning, retries, journal, cost
# summary) but it has learned nothing, so its captions are gibberish, its weak-label accuracy is
# about zero and answer-driven requests are rejected. That is the honest small-mode result, and it
# is why the CPU lab trains on oracle CoT. Set `JUDGE = "openai:gpt-4o"` (with `OPENAI_API_KEY`,
# and `OPENAI_BASE_URL` for Qwen-VL-Max's compatible mode or a vLLM server) to annotate for real;
# replies are cached on disk, so a rerun pays nothing twice.

# %% tags=["parameters"]
SMALL = True            # True: CPU, synthetic data, a local random-init judge. False: the GPU settings below.
QUICK = False           # True: the CI settings (a few samples).
DATA_DIR = "data/lab"   # shared data folder: 01 wrote DATA_DIR/synth
RUN_DIR = "runs/lab"
SEED = 0
JUDGE = ""              # empty: a local model; or e.g. openai:gpt-4o, openai:qwen-vl-max, local:PATH
# GPU settings (SMALL = False): a pretrained VLM as the local judge.
GPU_BASE_MODEL = "InternVL3-2B-hf"

# %%
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from labkit.notebooks import PAPER, enter_project, profile

ROOT = enter_project()
P = profile(SMALL, QUICK)
DATA = Path(DATA_DIR)
SYNTH = DATA / "synth"
assert (SYNTH / "dataset.json").exists(), f"{SYNTH} is missing: run 01_generate first"

# %%
from labkit.judges import make_judge
from labkit.models import build_model

if JUDGE:
    judge_spec = JUDGE
elif SMALL:
    judge_dir = DATA / "models" / f"judge-{P.model_size}"
    if not (judge_dir / "config.json").exists():
        build_model(P.model_arch, P.model_size, judge_dir, seed=SEED)
    judge_spec = f"local:{judge_dir}"
else:
    judge_spec = f"local:{GPU_BASE_MODEL}"
judge_opts = {"max_new_tokens": P.judge_max_new_tokens, "batch_size": 8} if judge_spec.startswith("local:") else {}
judge = make_judge(judge_spec, **judge_opts)
print("judge:", judge.spec)

# %% [markdown]
# ## Three annotation runs
#
# Each run writes a NEW dataset folder (the source is never touched) with `caption` and `cot`
# filled, plus `annotation/<split>/journal.jsonl`: one line per finished sample, fsynced, so an
# interrupted run resumes and never pays twice. We annotate the first samples of the labelled
# `train` split, so every judge answer can be scored against the truth.

# %%
from labkit.annotate import AnnotateConfig, annotate, format_summary

runs = {}
for method in ("auto", "answer-driven", "oracle"):
    out = DATA / f"annotated-{method}"
    if out.exists():
        shutil.rmtree(out)   # this notebook owns these folders (a paid judge's replies stay in its cache)
    limit = None if method == "oracle" else P.annotate_limit
    cfg = AnnotateConfig(method=method, limit=limit, max_retries=1, image_size=P.image_size, progress=False)
    runs[method] = annotate(method, SYNTH, "train", out, judge=None if method == "oracle" else judge, config=cfg)
    print(format_summary(runs[method]), "\n")

# %%
rows = []
for method, s in runs.items():
    rows.append({"method": method, "samples": s["done"], "answer accuracy %": s.get("accuracy"),
                 "random baseline %": s.get("random_baseline"), "unparsed": s.get("unparsed"),
                 "rejection rate": s.get("rejection_rate"), "completion tokens": s["completion_tokens"],
                 "cost USD": s["cost_usd"]})
summary_table = pd.DataFrame(rows).set_index("method")
display(summary_table)

for method, s in runs.items():
    assert s["failed"] == 0 and s["written"] == s["done"] == s["n"], (method, s)
    assert (DATA / f"annotated-{method}" / "train.parquet").exists()
    assert 0 <= s["accuracy"] <= 100
assert runs["oracle"]["accuracy"] == 100.0            # the oracle writes from the truth
assert runs["answer-driven"]["attempts"] >= runs["answer-driven"]["n"]

# %%
fig = go.Figure()
fig.add_bar(x=list(runs), y=[runs[m]["accuracy"] for m in runs], name=f"this run ({judge.spec.split('/')[-1]})",
            text=[f"{runs[m]['accuracy']:.1f}" for m in runs], textposition="outside")
fig.add_bar(x=["auto"], y=[PAPER["weak_cot_accuracy"]], name="paper: Qwen-VL-Max automatic")
fig.add_hline(y=runs["auto"]["random_baseline"], line_dash="dash", annotation_text="random baseline")
fig.update_layout(barmode="group", yaxis_title="answer accuracy (%)", height=360,
                  title="Weak-label accuracy: how often the annotator's own answer is right")
fig.show()

# %% [markdown]
# **What to notice.** The oracle is right by construction. The automatic judge's accuracy is the
# *weak-label accuracy* the paper measured (38.25 % for Qwen-VL-Max, barely above random: strong
# general VLMs are poor at this task, which is the paper's motivation). In small mode our random
# judge sits near zero, mostly unparsed. Answer-driven replies are checked: a CoT that reaches any
# other answer is rejected and asked again (`max_retries`), so what survives always agrees with
# the human label. Below: what each method wrote for one sample.

# %%
from labkit.annotate import read_journal
from labkit.data import load_split

sid = load_split(SYNTH, "train")[0]["id"]
for method in runs:
    row = read_journal(DATA / f"annotated-{method}" / "annotation" / "train" / "journal.jsonl")[sid]
    print(f"--- {method}: label {row['label']}, the annotator's answer {row['answer']} ---")
    print("caption:", (row.get("caption") or "(none)")[:300])
    print("reply:  ", (row.get("reply") or "")[:400], "\n")

# %% [markdown]
# ## The annotation store
#
# People label in the app (notebook 06); every label is an *event* in one SQLite file
# (`labkit.store`): who, when, which candidates, which defect tags, how long it took. Nothing is
# ever updated or deleted (an undo is an event too), so the history stays auditable, and several
# annotators can label the same sample. Their **agreement** (Fleiss' kappa per candidate, and
# exact-answer agreement) tells you how reliable the labels are; only agreed labels are exported
# for training.
#
# Below, three *simulated* annotators label the first training samples: `ana` copies the truth,
# `ben` and `cai` flip one candidate's verdict 15 % and 35 % of the time. (Simulated, so the
# notebook runs unattended; in the app these are people.)

# %%
from labkit.metrics import LETTERS
from labkit.store import AnnotationStore, dataset_name

store = AnnotationStore(DATA / "annotations.sqlite")
dataset = dataset_name(SYNTH)
registered = store.register_split(SYNTH, "train", dataset=dataset)
train = load_split(SYNTH, "train")
rng = np.random.default_rng(SEED)


def noisy(answer: str, p: float) -> str:
    """The answer with one candidate's verdict flipped with probability p."""
    if rng.random() >= p:
        return answer
    accepted = set() if answer == "N" else set(answer)
    accepted ^= {LETTERS[int(rng.integers(4))]}
    return "".join(l for l in LETTERS if l in accepted) or "N"


n_label = min(len(train), 12 if QUICK else 48)
for name, p in (("ana", 0.0), ("ben", 0.15), ("cai", 0.35)):
    store.add_annotator(name)
    for s in train.select(range(n_label)):
        store.add_label(name, dataset, s["id"], answer=noisy(s["answer"], p), seconds=float(rng.uniform(5, 30)))

progress = store.progress(dataset)
agreement = store.agreement(dataset)
print(json.dumps({k: progress[k] for k in ("samples", "labelled", "agreed", "ties", "disagreements")}))
print("kappa per candidate:", {k: (None if v is None else round(v, 2)) for k, v in agreement["kappa"].items()},
      " exact agreement:", round(agreement["exact_agreement"], 2))
assert progress["labelled"] == n_label and agreement["n_samples"] == n_label
assert all(v is None or -1 <= v <= 1 for v in agreement["kappa"].values())

# %%
from labkit.app.handlers import agreement_figure, progress_figure

progress_figure(progress, title="Store progress").show()
agreement_figure(agreement, title="Agreement of ana, ben and cai").show()

# %% [markdown]
# **Adjudication and export.** The majority answer of each sample is its label; ties are flagged
# for a third look and never exported. The export is a new dataset folder, ready for training.

# %%
export_dir = DATA / "labelled-export"
if export_dir.exists():
    shutil.rmtree(export_dir)
exported = store.export_split(dataset, export_dir, split="train")
print(exported)
back = load_split(export_dir, "train")
truth = dict(zip(train["id"], train["answer"]))
majority_right = np.mean([truth[s] == a for s, a in zip(back["id"], back["answer"])])
print(f"exported {len(back)} samples; the majority label equals the truth on {100 * majority_right:.0f} % of them")
assert exported["exported"] == len(back) > 0
assert exported["exported"] + exported["ties"] + exported["flagged"] + exported["unlabelled"] + exported["below_min_votes"] \
    == progress["samples"]
store.close()

# %% [markdown]
# Next: `03_sft` trains the cold start on `DATA_DIR/synth`: reasoning written from the ground truth
# stands in for answer-driven CoT (both always reach the human answer), the weak `pseudo_label`
# split for stage 1.1.
