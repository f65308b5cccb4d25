"""What is being evaluated: a screening split or a multiple-choice benchmark, behind one interface.

`task_for(data_dir)` looks at the folder once (`labkit.mc.data.is_mc_dataset`) and returns a
`ScreenTask` (the lab's screening samples, `labkit.data`) or an `MCTask` (a prepared BLINK /
MuirBench / RealWorldQA folder, `labkit.mc.tasks`). A task knows its rows (with labels checked),
how a row becomes ``(images, prompt)`` for the model, how a reply becomes a predictions.jsonl
line, how those lines are scored, which settings must match for a run to resume, and which
GRPO rewards fit its answers. `labkit.evaluate.evaluate` drives either one through the same
resumable loop, so both write the same files::

    task = task_for("data/mc/blink", form="cot", image_size=448)
    ds, ids = task.load("test", limit=None)
    images, prompt = task.inputs(ds, [0], len(ds))[0][1:]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labkit.conversions import Conversion, to_grpo_row
from labkit.data import load_split
from labkit.mc.data import is_mc_dataset, load_mc
from labkit.mc.tasks import MC_FORMS, check_mc_rewards, item_images, mc_prediction_row, mc_prompt, score_predictions
from labkit.metrics import LETTERS, candidate_auc, is_correct, parse_answer, score
from labkit.prompts import screening_prompt

# The settings that must match for a resumed screening evaluation to mix with earlier predictions.
RESUME_KEYS = ("model", "data", "split", "form", "layout", "variant", "image_size", "prompt", "max_new_tokens",
               "do_sample", "temperature", "top_k", "top_p", "judge", "swap_images")
# layout, variant and prompt do not apply to MC items, so they do not block a resume.
MC_RESUME_KEYS = ("model", "data", "split", "form", "image_size", "max_new_tokens", "do_sample", "temperature",
                  "top_k", "top_p")


# ----------------------------------------------------------------------------- screening scoring

def prediction_row(sample_id: str, response: str, answer: str, dimension: str | None,
                   p_ok: list[float | None] | None = None) -> dict:
    """One predictions.jsonl line: the parsed answer is None when the reply has none (unparsed).

    ``p_ok`` (kept when given): the model's P(ok) at its verdict about each candidate A-D.
    """
    prediction = parse_answer(response)
    row = {
        "id": sample_id,
        "response": response,
        "prediction": prediction,
        "answer": answer,
        "dimension": dimension,
        "correct": is_correct(prediction, answer),
    }
    if p_ok is not None:
        row["p_ok"] = p_ok
    return row


def verdict_auc(rows: list[dict], ds) -> dict | None:
    """`labkit.metrics.candidate_auc` of the rows' ``p_ok`` against the split's defect tags.

    None when no row has a verdict score or the split has no per-candidate tags. A candidate
    the reasoning gave no ``ok``/``no`` verdict scores 0.5 (undecided); their count is
    ``missing_verdicts``.
    """
    if "candidate_defects" not in ds.column_names or not any(v is not None for r in rows for v in (r.get("p_ok") or [])):
        return None  # no verdict anywhere (e.g. an untrained model): no AUC rather than a fake 0.5
    defects = ds.select_columns(["candidate_defects"])["candidate_defects"]
    if any(d is None for d in defects):
        return None
    scores, missing = [], 0
    for r in rows:
        p = r.get("p_ok") or [None] * 4
        missing += sum(v is None for v in p)
        scores.append([0.5 if v is None else v for v in p])
    out = candidate_auc(scores, defects)
    out["missing_verdicts"] = missing
    return out


def top1_score(rows: list[dict]) -> dict:
    """The score of a fixed decision rule on the model's own verdict probabilities: name the one
    candidate with the highest P(ok), never N (``overall``, ``per_dimension``, as `score`).

    Reported beside the generated answers, never instead of them. The metric punishes every wrong
    letter of a subset, so a model whose verdicts rank well can still score below random when it
    names every candidate it finds more likely acceptable than not (or none): this separates
    what the model sees from how its answer is decided. The CNN baseline answers by a rule of
    the same kind.
    """
    preds = []
    for r in rows:
        p = [0.5 if v is None else v for v in (r.get("p_ok") or [None] * 4)]
        preds.append(LETTERS[max(range(4), key=lambda k: p[k])])
    res = score(preds, [r["answer"] for r in rows], [r["dimension"] or "unknown" for r in rows])
    return {"rule": "highest P(ok), never N", "overall": res["overall"], "per_dimension": res["per_dimension"]}


# ----------------------------------------------------------------------------- tasks

class ScreenTask:
    """The lab's screening samples (`labkit.data`): the paper's metric, per-candidate verdicts."""

    kind = "screen"
    unit = "sample"
    resume_keys = RESUME_KEYS
    judges = True  # an API or local judge can answer instead of a model
    verdicts = True  # keep the model's P(ok) per candidate (AUC, top-1 rule)
    refused_rewards: tuple[str, ...] = ()

    def __init__(self, data_dir, *, form="cot", layout="separate", variant="train", image_size=None, prompt="full",
                 swap_images=False):
        screening_prompt(form, layout, variant, prompt)  # validates the four names with a clear error
        self.data_dir = data_dir
        self.conv = Conversion(form=form, layout=layout, variant=variant, image_size=image_size, prompt=prompt)
        self.swap_images = swap_images

    def load(self, split: str, limit: int | None):
        """(split dataset, ids of the first ``limit`` samples); refuses unlabelled samples."""
        ds = load_split(self.data_dir, split)
        n_total = len(ds) if limit is None else min(limit, len(ds))
        ids = ds.select_columns(["id"])["id"][:n_total]
        unlabelled = [r["id"] for r in ds.select_columns(["id", "answer"]).select(range(n_total)) if r["answer"] is None]
        if unlabelled:
            raise ValueError(f"split {split!r} has unlabelled samples (e.g. {unlabelled[0]!r}); evaluation needs answers")
        return ds, ids

    def settings(self, common: dict, judge_name) -> dict:
        """run.json's settings (the order the files have always had)."""
        c, conv = common, self.conv
        return dict(model=c["model"], data=c["data"], split=c["split"], form=conv.form, layout=conv.layout,
                    variant=conv.variant, image_size=conv.image_size, prompt=conv.prompt,
                    max_new_tokens=c["max_new_tokens"], do_sample=c["do_sample"], temperature=c["temperature"],
                    top_k=c["top_k"], top_p=c["top_p"], judge=judge_name, seed=c["seed"],
                    batch_size=c["batch_size"], limit=c["limit"], swap_images=self.swap_images)

    def inputs(self, ds, indices, n_total: int) -> list[tuple[dict, list, Any]]:
        """(row, images, prompt message) per index; the image-swap control shows the next sample's images."""
        out = []
        for i in indices:
            row = to_grpo_row(ds[i], self.conv)
            if self.swap_images:  # the next sample's images, this sample's labels
                row["images"] = to_grpo_row(ds[(i + 1) % n_total], self.conv)["images"]
            out.append((row, row["images"], row["prompt"][0]))
        return out

    def prediction(self, row: dict, reply: str, p_ok) -> dict:
        return prediction_row(row["id"], reply, row["answer"], row["dimension"] or None, p_ok)

    def score(self, rows: list[dict], ds, n_total: int) -> dict:
        result = score([r["prediction"] for r in rows], [r["answer"] for r in rows],
                       [r["dimension"] or "unknown" for r in rows])
        auc = verdict_auc(rows, ds.select(range(n_total)))
        if auc is not None:
            result["auc"] = auc
            result["top1"] = top1_score(rows)
        return result

    def extras(self) -> dict:
        return {}

    def check_rewards(self, rewards, source: str) -> None:
        """Screening data takes every reward."""


class MCTask:
    """A prepared multiple-choice benchmark folder (`labkit.mc.data`): `labkit.mc.metrics.score_mc`.

    Layout, variant and prompt style do not apply to MC items (recorded only); judges are refused.
    """

    kind = "mc"
    unit = "item"
    resume_keys = MC_RESUME_KEYS
    judges = False
    verdicts = False

    def __init__(self, data_dir, *, form="cot", layout=None, variant=None, image_size=None, prompt=None,
                 swap_images=False):
        if form not in MC_FORMS:
            raise ValueError(f"unknown prompt form {form!r}; expected one of {MC_FORMS}")
        self.data_dir = data_dir
        self.form, self.layout, self.variant, self.image_size = form, layout, variant, image_size

    def load(self, split: str, limit: int | None):
        """(split dataset, ids of the first ``limit`` items); refuses hidden answers."""
        ds = load_mc(self.data_dir, split)
        n_total = len(ds) if limit is None else min(limit, len(ds))
        meta = ds.select_columns(["id", "answer"]).select(range(n_total)).to_list()
        hidden = [m["id"] for m in meta if m["answer"] is None]
        if hidden:
            raise ValueError(f"split {split!r} of {self.data_dir} has hidden answers (e.g. {hidden[0]!r}); "
                             "it cannot be scored")
        return ds, [m["id"] for m in meta]

    def settings(self, common: dict, judge_name) -> dict:
        c = common
        return dict(model=c["model"], data=c["data"], split=c["split"], kind="mc", form=self.form, layout=self.layout,
                    variant=self.variant, image_size=self.image_size, max_new_tokens=c["max_new_tokens"],
                    do_sample=c["do_sample"], temperature=c["temperature"], top_k=c["top_k"], top_p=c["top_p"],
                    seed=c["seed"], batch_size=c["batch_size"], limit=c["limit"])

    def inputs(self, ds, indices, n_total: int) -> list[tuple[dict, list, str]]:
        out = []
        for i in indices:
            item = ds[i]
            images = item_images(item, self.image_size)
            out.append((item, images, mc_prompt(item["question"], item["options"], self.form, len(images))))
        return out

    def prediction(self, item: dict, reply: str, p_ok) -> dict:
        return mc_prediction_row(item["id"], reply, item["answer"], len(item["options"]), item["category"] or "")

    def score(self, rows: list[dict], ds, n_total: int) -> dict:
        return score_predictions(rows)

    def extras(self) -> dict:
        return {"benchmark": _benchmark_of(self.data_dir)}

    def check_rewards(self, rewards, source: str) -> None:
        """Refuses the screening rewards (they parse A-D, N and several letters)."""
        check_mc_rewards(rewards, source)


def _benchmark_of(data_dir) -> str | None:
    try:
        return json.loads((Path(data_dir) / "dataset.json").read_text()).get("benchmark")
    except (OSError, ValueError):
        return None


def task_for(data_dir, **conversion) -> ScreenTask | MCTask:
    """The task of a data folder: `MCTask` for a prepared MC folder, else `ScreenTask`.

    ``conversion``: ``form``, ``layout``, ``variant``, ``image_size``, ``prompt``, ``swap_images``
    (None leaves the task's default).
    """
    cls = MCTask if is_mc_dataset(data_dir) else ScreenTask
    return cls(data_dir, **{k: v for k, v in conversion.items() if v is not None})
