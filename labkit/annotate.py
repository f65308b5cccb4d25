"""Annotation: captions and chains of thought from a judge, or from the ground truth.

Three methods (paper, Section 3.2), each writing a NEW dataset folder (the source is never
touched; ``dataset.json`` records it as ``parent``) with ``caption`` / ``cot`` filled:

- ``auto`` (fully automatic, progressive): the judge first describes every image
  (`labkit.prompts.CAPTION_PROMPT`), then reasons over its own descriptions (and the images)
  and answers. Captions, CoT, the judge's answer, the prompts and token counts are kept.
  Where the split has labels, the judge's answers are scored with the paper's metric (weak-label
  accuracy; the paper measured 38.25% with Qwen-VL-Max). Unlabelled samples get the judge's
  answer as a weak label (``meta.annotation.weak_label``).
- ``answer-driven``: the judge is given the human answer (`labkit.prompts.answer_driven_prompt`)
  and asked for the reasoning that reaches it. A reply whose final answer is not exactly that
  answer is rejected and asked again (telling the judge what went wrong) up to ``max_retries``
  times; the rejection rate is reported. Samples that never pass keep an empty CoT (or are
  dropped with ``drop_rejected``).
- ``oracle``: no judge. For synthetic samples (`labkit.synth`) the caption and CoT are written
  from the ground-truth defects in ``meta`` with the generator's own writer
  (`labkit.synth.text`); other samples with ``candidate_defects`` get a plain template
  (`labkit.oracle`).

Resumable: each finished sample is appended (and fsynced) to
``OUT/annotation/<split>/journal.jsonl``; a rerun skips the ids already there, so nothing is
sent (or paid) twice. Requests that do go out also pass through the judge's response cache.
Failed samples (a judge error after its retries) are counted and left for the next run.

Run::

    labkit annotate auto --judge openai:gpt-4o --data data/synth --split pseudo_label --out data/synth-auto
    labkit annotate answer-driven --judge local:data/models/small-internvl --data data/synth --split train --out data/synth-ad
    labkit annotate oracle --data data/synth --split train --out data/synth-oracle
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from labkit.conversions import sample_images, user_message
from labkit.data import load_split, save_split
from labkit.jsonl import append_rows, read_by_id
from labkit.judges import make_judge
from labkit.metrics import canonical_answer, parse_answer, score
from labkit.oracle import oracle_annotation
from labkit.prompts import CAPTION_PROMPT, answer_driven_prompt, screening_prompt

METHODS = ("auto", "answer-driven", "oracle")
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_TAIL = re.compile(r"<answer>.*?(</answer>|$)", re.DOTALL | re.IGNORECASE)


@dataclass
class AnnotateConfig:
    """Options of an annotation run (the CLI flags mirror these)."""

    method: str = "auto"
    """auto | answer-driven | oracle."""
    layout: str = "separate"
    """How the judge sees the candidates: separate (5 images) or grid (original + 2x2 grid)."""
    image_size: int | None = None
    """Resize every image to this square size before sending (None: as stored)."""
    concurrency: int = 4
    """At most this many judge requests in flight."""
    max_retries: int = 3
    """answer-driven: extra attempts after a reply whose answer disagrees with the human one."""
    chunk: int = 16
    """Samples handled per round (journal written after each); also the local judge's batch pool."""
    limit: int | None = None
    """Annotate only the first N samples of the split."""
    drop_rejected: bool = False
    """answer-driven: leave samples that never passed out of the new split (default: keep, empty CoT)."""
    progress: bool = True


# ----------------------------------------------------------------------------- prompts and parsing

def reasoning_prompt(captions: str, layout: str = "separate") -> str:
    """Step 2 of automatic annotation: reason over one's own image descriptions, then answer."""

    return (screening_prompt("cot", layout, "train")
            + "\n\nYour own descriptions of the images:\n" + captions.strip()
            + "\n\nReason over these descriptions and the images, candidate by candidate, then answer.")


def retry_prompt(answer: str, got: str | None, attempt: int, layout: str = "separate") -> str:
    """Answer-driven retry ``attempt`` (2, 3, ...): the request plus what was wrong with the last reply.

    The attempt number is part of the text so that each retry is a new request (a response
    cache would otherwise hand back the same rejected reply).
    """

    said = f"reached {got}" if got else "gave no answer in <answer></answer> tags"
    return (answer_driven_prompt(answer, layout)
            + f"\nAttempt {attempt}: your previous reasoning {said}, which is not the reviewer's answer {answer}. "
              "Look again and write reasoning that supports exactly that answer.")


def extract_cot(reply: str) -> str:
    """The reasoning of a reply, without tags: the ``<think>`` content, else the text before ``<answer>``."""
    m = _THINK.findall(reply or "")
    if m:
        return m[-1].strip()
    return _ANSWER_TAIL.sub("", reply or "").replace("<think>", "").replace("</think>", "").strip()


# ----------------------------------------------------------------------------- journal

def _journal_dir(out: Path, split: str) -> Path:
    return out / "annotation" / split


def read_journal(path: Path) -> dict[str, dict]:
    """Finished items by id; a torn last line (a crash mid-write) is ignored."""
    return read_by_id(path)


def _append(path: Path, rows: list[dict]) -> None:
    append_rows(path, rows, ensure_ascii=False)


def _usage(replies) -> dict:
    replies = [r for r in replies if r is not None]
    costs = [r.cost_usd for r in replies]
    return {
        "requests": sum(r.attempts for r in replies),
        "cached": sum(r.cached for r in replies),
        "prompt_tokens": sum(r.prompt_tokens or 0 for r in replies),
        "completion_tokens": sum(r.completion_tokens or 0 for r in replies),
        "cost_usd": None if any(c is None for c in costs) else sum(costs),
    }


# ----------------------------------------------------------------------------- the run

def _images(sample: dict, cfg: AnnotateConfig):
    return sample_images(sample, cfg.layout, cfg.image_size)


def _run_auto(judge, samples: list[dict], cfg: AnnotateConfig) -> tuple[list[dict], int]:
    images = [_images(s, cfg) for s in samples]
    cap_reqs = [([user_message(len(im), CAPTION_PROMPT)], im) for im in images]
    caps = judge.complete_many(cap_reqs, concurrency=cfg.concurrency, progress=False, return_exceptions=True)
    rows, failed, reason_idx, reason_reqs = [], 0, [], []
    # Step 2 sees the images again plus its own step-1 descriptions, in one user turn (so
    # single-turn local judges work the same way).
    for i, c in enumerate(caps):
        if isinstance(c, BaseException):
            failed += 1
            continue
        reason_idx.append(i)
        reason_reqs.append(([user_message(len(images[i]), reasoning_prompt(c.text, cfg.layout))], images[i]))
    reasons = judge.complete_many(reason_reqs, concurrency=cfg.concurrency, progress=False, return_exceptions=True)
    for k, (i, r) in enumerate(zip(reason_idx, reasons)):
        if isinstance(r, BaseException):
            failed += 1
            continue
        s, c = samples[i], caps[i]
        rows.append({
            "id": s["id"], "method": "auto", "judge": judge.spec, "caption": c.text.strip(), "cot": extract_cot(r.text),
            "reply": r.text, "answer": parse_answer(r.text), "label": s.get("answer"), "dimension": s.get("dimension"),
            "prompts": {"caption": CAPTION_PROMPT, "reason": reason_reqs[k][0][0]["content"][-1]["text"]},
            "usage": {"caption": _usage([c]), "reason": _usage([r]), "total": _usage([c, r])},
        })
    return rows, failed


def _run_answer_driven(judge, samples: list[dict], cfg: AnnotateConfig) -> tuple[list[dict], int]:
    state = []
    for s in samples:
        label = canonical_answer(s["answer"])
        state.append({"sample": s, "label": label, "images": _images(s, cfg), "replies": [], "prompts": [],
                      "answers": [], "done": False, "failed": False})
    for attempt in range(cfg.max_retries + 1):
        pending = [st for st in state if not st["done"] and not st["failed"]]
        if not pending:
            break
        prompts = [answer_driven_prompt(st["label"], cfg.layout) if attempt == 0
                   else retry_prompt(st["label"], st["answers"][-1], attempt + 1, cfg.layout) for st in pending]
        reqs = [([user_message(len(st["images"]), p)], st["images"]) for st, p in zip(pending, prompts)]
        replies = judge.complete_many(reqs, concurrency=cfg.concurrency, progress=False, return_exceptions=True)
        for st, p, r in zip(pending, prompts, replies):
            if isinstance(r, BaseException):
                st["failed"] = True
                continue
            got = parse_answer(r.text)
            st["replies"].append(r)
            st["prompts"].append(p)
            st["answers"].append(got)
            st["done"] = got == st["label"]   # exact: a subset would be a different conclusion
    rows, failed = [], 0
    for st in state:
        if st["failed"]:
            failed += 1
            continue
        s, replies = st["sample"], st["replies"]
        accepted = st["done"]
        rows.append({
            "id": s["id"], "method": "answer-driven", "judge": judge.spec, "caption": "",
            "cot": extract_cot(replies[-1].text) if accepted else "", "reply": replies[-1].text,
            "answer": st["answers"][-1], "label": st["label"], "dimension": s.get("dimension"),
            "accepted": accepted, "attempts": len(replies), "rejected": len(replies) - int(accepted),
            "rejected_answers": st["answers"][:-1] if accepted else st["answers"],
            "prompts": {"attempts": st["prompts"]}, "usage": {"total": _usage(replies)},
        })
    return rows, failed


def _run_oracle(samples: list[dict], cfg: AnnotateConfig) -> tuple[list[dict], int]:
    rows = []
    for s in samples:
        cap, cot, source = oracle_annotation(s)
        answer = canonical_answer(s.get("answer") or json.loads(s.get("meta") or "{}").get("truth", {}).get("answer"))
        rows.append({"id": s["id"], "method": "oracle", "judge": f"oracle:{source}", "caption": cap, "cot": cot,
                     "reply": cot, "answer": answer, "label": s.get("answer"), "dimension": s.get("dimension"),
                     "usage": {"total": _usage([])}})
    return rows, 0


def _settings(method: str, judge_spec: str | None, data: Path, split: str, cfg: AnnotateConfig) -> dict:
    return {"method": method, "judge": judge_spec, "data": str(data), "split": split, "layout": cfg.layout,
            "image_size": cfg.image_size, "max_retries": cfg.max_retries if method == "answer-driven" else None}


def annotate(method: str, data, split: str, out, judge=None, config: AnnotateConfig | None = None, **judge_opts) -> dict:
    """Annotate ``data/split`` with ``method`` into the new dataset folder ``out``; returns the summary.

    ``judge``: a `labkit.judges.Judge` or a spec (``openai:MODEL``, ``local:PATH``; options in
    ``judge_opts``); not used by ``oracle``. See the module docstring for what each method does.
    """
    from tqdm.auto import tqdm

    cfg = config or AnnotateConfig(method=method)
    if method not in METHODS:
        raise ValueError(f"unknown annotation method {method!r}; expected one of {', '.join(METHODS)}")
    data, out = Path(data), Path(out)
    if not data.is_dir():
        raise FileNotFoundError(f"dataset folder {str(data)!r} does not exist")
    if out.resolve() == data.resolve():
        raise ValueError(f"--out {str(out)!r} is the source dataset; annotation writes a NEW folder")
    if method != "oracle":
        if judge is None:
            raise ValueError(f"method {method!r} needs a judge (openai:MODEL or local:PATH)")
        judge = make_judge(judge, **judge_opts)
    ds = load_split(data, split)
    if cfg.limit is not None:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    jdir = _journal_dir(out, split)
    jdir.mkdir(parents=True, exist_ok=True)
    settings = _settings(method, judge.spec if judge is not None else None, data.resolve(), split, cfg)
    run_file = jdir / "run.json"
    if run_file.exists():
        old = json.loads(run_file.read_text())
        if old != settings:
            diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
            raise ValueError(f"{out} holds a {split!r} annotation run with other settings {diff}; use a new --out")
    else:
        run_file.write_text(json.dumps(settings, indent=2) + "\n")
    journal = jdir / "journal.jsonl"
    done = read_journal(journal)
    ids = ds["id"]
    if method == "answer-driven":
        unlabelled = [sid for sid, a in zip(ids, ds["answer"]) if a is None]
        if unlabelled:
            raise ValueError(f"answer-driven CoT needs human answers; {len(unlabelled)} sample(s) of {split!r} have none "
                             f"(e.g. {unlabelled[0]!r})")
    todo = [i for i, sid in enumerate(ids) if sid not in done]
    failed = 0
    new_rows: list[dict] = []
    bar = tqdm(total=len(ids), initial=len(ids) - len(todo), desc=f"annotate {method}", unit="sample",
               disable=not cfg.progress)
    for start in range(0, len(todo), max(1, cfg.chunk)):
        chunk = [ds[i] for i in todo[start:start + cfg.chunk]]
        if method == "auto":
            rows, n_failed = _run_auto(judge, chunk, cfg)
        elif method == "answer-driven":
            rows, n_failed = _run_answer_driven(judge, chunk, cfg)
        else:
            rows, n_failed = _run_oracle(chunk, cfg)
        _append(journal, rows)   # durable before moving on: a crash never loses paid-for replies
        for row in rows:
            done[row["id"]] = row
        new_rows += rows
        failed += n_failed
        bar.update(len(rows))
    bar.close()
    summary = summarise(method, [done[sid] for sid in ids if sid in done], new_rows, failed, len(ids))
    summary.update({"out": str(out), "split": split, "judge": settings["judge"], "data": str(data)})
    if failed:
        summary["incomplete"] = True
        summary["errors"] = list(getattr(judge, "errors", []))  # why: connection refused, HTTP status and body
    else:
        _write_split(ds, done, out, split, data, method, cfg, summary)
    (jdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_split(ds, done: dict, out: Path, split: str, data: Path, method: str, cfg: AnnotateConfig, summary: dict):
    samples = []
    for s in ds:
        row = done[s["id"]]
        if method == "answer-driven" and cfg.drop_rejected and not row.get("accepted"):
            continue
        meta = json.loads(s.get("meta") or "{}")
        note = {"method": method, "judge": row["judge"], "answer": row.get("answer"), **row["usage"]["total"]}
        if method == "answer-driven":
            note.update(accepted=row["accepted"], attempts=row["attempts"])
        s = dict(s)
        if s.get("answer") is None and method == "auto" and row.get("answer") is not None:
            s["answer"] = row["answer"]      # a weak label for unlabelled data (pseudo-label split)
            note["weak_label"] = True
        meta["annotation"] = note
        s.update(caption=row.get("caption") or s.get("caption") or "", cot=row.get("cot") or "",
                 meta=json.dumps(meta, sort_keys=True))
        samples.append(s)
    save_split(samples, out, split, name=out.name, parent=str(data.resolve()))
    manifest_path = out / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("annotation", {})[split] = {k: summary.get(k) for k in ("method", "judge", "n", "cost_usd")}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    summary["written"] = len(samples)


def summarise(method: str, rows: Sequence[dict], new_rows: Sequence[dict], failed: int, n_total: int) -> dict:
    """Accuracy (labelled samples, paper's metric), rejection rate and cost of a run's journal rows."""
    def total(rs, key):
        vals = [r["usage"]["total"][key] for r in rs]
        if key == "cost_usd":
            return None if any(v is None for v in vals) else sum(vals)
        return sum(vals)

    labelled = [r for r in rows if r.get("label") is not None]
    result = {
        "method": method, "n": n_total, "done": len(rows), "new": len(new_rows), "failed": failed,
        "requests_this_run": total(new_rows, "requests"), "cached_this_run": total(new_rows, "cached"),
        "prompt_tokens": total(rows, "prompt_tokens"), "completion_tokens": total(rows, "completion_tokens"),
        "cost_usd": total(rows, "cost_usd"), "cost_usd_this_run": total(new_rows, "cost_usd"),
    }
    if labelled:
        sc = score([r.get("answer") for r in labelled], [r["label"] for r in labelled],
                   [r.get("dimension") or "unknown" for r in labelled])
        result["accuracy"] = sc["overall"]
        result["random_baseline"] = sc["random_baseline"]
        result["unparsed"] = sc["unparsed"]
        result["per_dimension"] = sc["per_dimension"]
        result["n_labelled"] = len(labelled)
    if method == "answer-driven":
        attempts = sum(r["attempts"] for r in rows)
        rejected = sum(r["rejected"] for r in rows)
        result.update(attempts=attempts, rejected_attempts=rejected,
                      rejection_rate=(rejected / attempts) if attempts else None,
                      accepted=sum(bool(r["accepted"]) for r in rows),
                      never_accepted=sum(not r["accepted"] for r in rows))
    return result


def format_summary(summary: dict) -> str:
    """A few human-readable lines for the CLI."""
    lines = [f"{summary['method']} on {summary['data']}:{summary['split']} -> {summary['out']}",
             f"  samples {summary['done']}/{summary['n']} (new this run {summary['new']}, failed {summary['failed']})"]
    if "accuracy" in summary:
        lines.append(f"  answer accuracy {summary['accuracy']:.2f}% on {summary['n_labelled']} labelled "
                     f"(random {summary['random_baseline']:.2f}%, unparsed {summary['unparsed']})")
    if "rejection_rate" in summary and summary["rejection_rate"] is not None:
        lines.append(f"  rejected {summary['rejected_attempts']}/{summary['attempts']} attempts "
                     f"({100 * summary['rejection_rate']:.1f}%); never accepted {summary['never_accepted']}")
    cost = summary["cost_usd"]
    this = summary["cost_usd_this_run"]
    lines.append(f"  requests this run {summary['requests_this_run']} (cache hits {summary['cached_this_run']}); "
                 f"tokens {summary['prompt_tokens']} in / {summary['completion_tokens']} out; "
                 f"cost {'unknown (no price for this model)' if cost is None else f'${cost:.4f}'}"
                 + ("" if this is None else f" (this run ${this:.4f})"))
    if summary.get("incomplete"):
        lines.append("  INCOMPLETE: some samples failed; rerun the same command to finish (done ones are skipped)")
        lines += [f"  judge error: {e}" for e in summary.get("errors", [])]
    elif "written" in summary:
        lines.append(f"  wrote {summary['written']} samples to {summary['out']}/{summary['split']}.parquet")
    return "\n".join(lines)
