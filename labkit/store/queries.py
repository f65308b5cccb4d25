"""Reading the annotation store: queues, progress, agreement, adjudication, export for training.

These work on the *current labels* of a store (`labkit.store.core.StoreCore.current_labels`:
each annotator's latest label that no undo retracted). They sit above `labkit.store.core` and
below `labkit.store.store.AnnotationStore`, which offers them as methods. Use them through those
methods (``store.queue(...)``, ``store.agreement()``, ``store.export_split(...)``) or the CLI
(``labkit store agreement DB``, ``labkit store export DB --dataset D --out DIR``).

Agreement uses *blind* labels only (given before the annotator saw anyone else's answer on the
sample; see `AnnotationStore.record_reveal`). It is Fleiss' kappa per candidate (A–D) over two
categories, accepted and rejected, on the samples with at least two answering annotators; with
unequal rater counts it uses the usual generalisation (each sample's agreement over its own
rater pairs). Exact-answer agreement is the share of those samples on which every annotator gave
the same answer.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from labkit.data import DEFECT_DIMENSIONS, DIMENSIONS, SPLITS, _split_files, answer_from_defects, load_split, save_split
from labkit.metrics import LETTERS
from labkit.store.core import QUEUES, SampleKey, StoreCore
from labkit.store.schema import StoreError, check_reasoning


# ----------------------------------------------------------------------------- adjudication

@dataclass
class Adjudication:
    """The decision for one sample from its current labels.

    ``status``: ``agreed`` (a strict majority answer, nobody flagged), ``tie`` (two or more
    answers share the top vote: flagged, not exported), ``flagged`` (an annotator flagged it),
    ``unlabelled`` (no current label with an answer).
    """

    key: SampleKey
    status: str
    answer: str | None = None
    votes: dict[str, int] = field(default_factory=dict)
    annotators: list[str] = field(default_factory=list)
    candidate_defects: list[list[str]] | None = None
    cot: str = ""
    cot_source: str = ""


def _decide(key: SampleKey, labels: dict) -> Adjudication:
    answered = {name: ev for name, ev in labels.items() if ev.answer is not None}
    votes = Counter(ev.answer for ev in answered.values())
    adj = Adjudication(key, "unlabelled", votes=dict(votes), annotators=sorted(labels))
    if any(ev.flag for ev in labels.values()):
        adj.status = "flagged"
    if not votes:
        return adj
    (top, n_top), *rest = votes.most_common()
    if rest and rest[0][1] == n_top:
        adj.status = "tie" if adj.status != "flagged" else "flagged"
        return adj
    adj.answer = top
    if adj.status == "flagged":
        return adj
    adj.status = "agreed"
    majority = [ev for ev in answered.values() if ev.answer == top]
    majority.sort(key=lambda ev: ev.event_id)
    tagged = [ev.candidate_defects for ev in majority if ev.candidate_defects is not None]
    if tagged:
        # Union of the majority's tags per candidate; accepted candidates have none by construction.
        adj.candidate_defects = [sorted({t for d in tagged for t in d[i]}) for i in range(len(LETTERS))]
    cots = [ev for ev in majority if ev.cot.strip()]
    adj.cot = cots[-1].cot if cots else ""
    adj.cot_source = (cots[-1].cot_source or "human") if cots else "none"
    return adj


def adjudicate(store: StoreCore, dataset: str | None = None) -> dict[SampleKey, Adjudication]:
    """Majority decision per registered sample (ties and flags are not decided)."""
    current = store.current_labels(dataset)
    return {key: _decide(key, current.get(key, {})) for key in store.samples(dataset)}


# ----------------------------------------------------------------------------- queues

def _hard(store: StoreCore, dataset: str | None) -> set[SampleKey]:
    sql = "SELECT s.dataset, s.sample_id FROM hard_cases h JOIN samples s ON s.id = h.sample"
    params: tuple = ()
    if dataset:
        sql, params = sql + " WHERE s.dataset = ?", (dataset,)
    return {SampleKey(*r) for r in store.query(sql, params)}


def queue(store: StoreCore, name: str, dataset: str | None = None, annotator: str | None = None,
          limit: int | None = None) -> list[SampleKey]:
    """Samples in a queue, in registration order.

    - ``unlabelled``: no current label from anyone, or, with ``annotator``, none from that annotator;
    - ``hard``: hard cases from HCM mining (with ``annotator``: those it has not labelled yet);
    - ``flagged``: flagged by an annotator, or tied between answers (needs a decision);
    - ``disagreements``: current answers differ between annotators.
    """
    if name not in QUEUES:
        raise StoreError(f"unknown queue {name!r}; expected one of {', '.join(QUEUES)}")
    keys = store.samples(dataset)
    current = store.current_labels(dataset)
    if name in ("unlabelled", "hard"):
        pool = keys if name == "unlabelled" else [k for k in keys if k in _hard(store, dataset)]
        if annotator is not None:
            out = [k for k in pool if annotator not in current.get(k, {})]
        elif name == "unlabelled":
            out = [k for k in pool if not current.get(k)]
        else:
            out = pool
    elif name == "flagged":
        out = [k for k in keys if _decide(k, current.get(k, {})).status in ("flagged", "tie")]
    else:
        out = [k for k in keys if len({ev.answer for ev in current.get(k, {}).values() if ev.answer is not None}) > 1]
    return out[:limit] if limit is not None else out


def progress(store: StoreCore, dataset: str | None = None) -> dict:
    """Counts for a progress display: samples, labelled, per annotator, queues, time spent."""
    keys = store.samples(dataset)
    current = store.current_labels(dataset)
    decisions = [_decide(k, current.get(k, {})) for k in keys]
    hard = _hard(store, dataset)
    per_annotator: Counter = Counter()
    seconds = []
    for labels in current.values():
        for name, ev in labels.items():
            per_annotator[name] += 1
            if ev.seconds is not None:
                seconds.append(ev.seconds)
    where, params = ("WHERE s.dataset = ?", (dataset,)) if dataset else ("", ())
    n_events = store.query(f"SELECT COUNT(*) FROM events e JOIN samples s ON s.id = e.sample {where}", params)[0][0]
    status = Counter(d.status for d in decisions)
    return {
        "samples": len(keys),
        "labelled": sum(1 for k in keys if current.get(k)),
        "unlabelled": sum(1 for k in keys if not current.get(k)),
        "per_annotator": dict(sorted(per_annotator.items())),
        "agreed": status["agreed"],
        "ties": status["tie"],
        "flagged": status["flagged"],
        "disagreements": len(queue(store, "disagreements", dataset)),
        "hard": len(hard),
        "hard_labelled": sum(1 for k in hard if current.get(k)),
        "events": n_events,
        "mean_seconds": (sum(seconds) / len(seconds)) if seconds else None,
    }


# ----------------------------------------------------------------------------- agreement

def fleiss_kappa(table: list[list[int]]) -> float | None:
    """Fleiss' kappa of a subjects × categories count table (rows may have different totals).

    Rows with fewer than two ratings are ignored. P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)),
    P̄ = mean P_i, p_j = Σ_i n_ij / Σ_i n_i, P_e = Σ_j p_j², κ = (P̄ − P_e) / (1 − P_e).
    Returns None when undefined (no rows, or every rating in one category: P_e = 1).
    """
    rows = [r for r in table if sum(r) >= 2]
    if not rows:
        return None
    k = len(rows[0])
    if any(len(r) != k for r in rows) or any(c < 0 for r in rows for c in r):
        raise ValueError("a kappa table needs non-negative counts and the same categories in every row")
    p_i = [(sum(c * c for c in r) - sum(r)) / (sum(r) * (sum(r) - 1)) for r in rows]
    p_bar = sum(p_i) / len(rows)
    total = sum(sum(r) for r in rows)
    p_j = [sum(r[j] for r in rows) / total for j in range(k)]
    p_e = sum(p * p for p in p_j)
    if abs(1.0 - p_e) < 1e-12:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def agreement(store: StoreCore, dataset: str | None = None) -> dict:
    """Inter-annotator agreement over samples with at least two answering annotators.

    Returns ``n_samples``, ``kappa`` ({letter: Fleiss' kappa over accepted/rejected, or None}),
    ``mean_kappa`` (over the defined ones), ``exact_agreement`` (share of samples with one
    answer from all), ``pairwise_exact`` (share of agreeing annotator pairs, averaged over samples).
    """
    answers_per_sample = []
    for labels in store.current_labels(dataset, blind_only=True).values():
        answers = [ev.answer for ev in labels.values() if ev.answer is not None]
        if len(answers) >= 2:
            answers_per_sample.append(answers)
    kappa = {}
    for letter in LETTERS:
        # Categories: [accepted, rejected]; "N" rejects every candidate.
        table = [[sum(letter in a for a in answers), sum(letter not in a for a in answers)] for answers in answers_per_sample]
        kappa[letter] = fleiss_kappa(table)
    defined = [v for v in kappa.values() if v is not None]
    pairwise = []
    for answers in answers_per_sample:
        n = len(answers)
        agree = sum(c * (c - 1) for c in Counter(answers).values())
        pairwise.append(agree / (n * (n - 1)))
    n = len(answers_per_sample)
    return {
        "n_samples": n,
        "kappa": kappa,
        "mean_kappa": sum(defined) / len(defined) if defined else None,
        "exact_agreement": (sum(len(set(a)) == 1 for a in answers_per_sample) / n) if n else None,
        "pairwise_exact": (sum(pairwise) / n) if n else None,
    }


# ----------------------------------------------------------------------------- export

def _dimension(source: dict, answer: str, defects: list[list[str]] | None) -> str | None:
    if source.get("answer") == answer and source.get("dimension") in DIMENSIONS:
        return source["dimension"]
    if answer == LETTERS:
        return "normal"
    if defects:
        tags = Counter(t for d in defects for t in d if t in DEFECT_DIMENSIONS)
        if tags:
            return tags.most_common(1)[0][0]
    return None


def export_split(store: StoreCore, dataset: str, out_dir: str | os.PathLike, split: str = "train",
                 name: str | None = None, min_votes: int = 1, drop_bad_reasoning: bool = False) -> dict:
    """Write the agreed labels of ``dataset`` as split ``split`` of a NEW dataset folder.

    Only samples with status ``agreed`` and at least ``min_votes`` votes for the majority answer
    are written; ties and flagged samples are counted, not exported. Images and the other
    columns come from the registered source folder (never modified); ``answer``,
    ``candidate_defects``, ``cot`` and ``dimension`` come from the labels, and ``meta`` gains an
    ``annotation`` entry (votes, annotators). ``dataset.json`` records the source as parent.
    The reasoning is checked again (`labkit.store.schema.check_reasoning`): reasoning whose own
    final answer contradicts the exported answer (e.g. from a store written before that check,
    or a source CoT) refuses the export with a message naming the samples and both answers;
    ``drop_bad_reasoning`` exports those samples without reasoning instead (counted in
    ``reasoning_dropped``). Returns a summary dict.
    """
    if split not in SPLITS:
        raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    out = Path(out_dir).resolve()
    decisions = adjudicate(store, dataset)
    if not decisions:
        raise StoreError(f"no samples registered for dataset {dataset!r}")
    sources = store.query("SELECT sample_id, source_dir, split FROM samples WHERE dataset = ?", (dataset,))
    where = {sid: (src, sp) for sid, src, sp in sources}
    for src, _ in set(where.values()):
        if src and Path(src).resolve() == out:
            raise StoreError(f"export folder {str(out)!r} is the source dataset; choose a new folder")
    if _split_files(out, split):
        raise StoreError(f"{str(out)!r} already has a {split!r} split; export into a new folder")
    chosen = {k.sample_id: d for k, d in decisions.items()
              if d.status == "agreed" and d.votes.get(d.answer, 0) >= min_votes}
    no_source = sorted(sid for sid in chosen if not where[sid][0])
    if no_source:
        raise StoreError(f"{len(no_source)} sample(s) have no registered source folder (e.g. {no_source[0]!r}); "
                         "register them with register_split")
    groups = defaultdict(list)
    for sid in chosen:
        groups[where[sid]].append(sid)
    samples, missing, bad_reasoning = [], [], []
    for (src, src_split), ids in sorted(groups.items()):
        ds = load_split(src, src_split, validate=False)
        wanted = set(ids)
        index = [i for i, sid in enumerate(ds["id"]) if sid in wanted]
        missing += sorted(wanted - {ds[i]["id"] for i in index})
        for row in ds.select(index):
            d = chosen[row["id"]]
            defects = d.candidate_defects
            src_defects = row.get("candidate_defects")
            if defects is None or any(not tags for letter, tags in zip(LETTERS, defects) if letter not in d.answer):
                # Labels without (complete) tags: keep the source's tags only where they imply the same answer.
                defects = src_defects if src_defects is not None and answer_from_defects(src_defects) == d.answer else None
            cot = d.cot or (row.get("cot") if row.get("answer") == d.answer else "") or ""
            source = (d.cot_source or "human") if d.cot else ("dataset" if cot else "none")
            try:
                check_reasoning(cot, d.answer, "human")
            except StoreError as exc:
                bad_reasoning.append(f"{row['id']}: {exc}".split(": fix the reasoning")[0])
                cot, source = "", "none"
            meta = json.loads(row.get("meta") or "{}")
            meta["annotation"] = {"store": str(store.path), "votes": d.votes, "annotators": d.annotators,
                                  "source_answer": row.get("answer"), "cot_source": source}
            samples.append({**row, "answer": d.answer, "candidate_defects": defects, "cot": cot,
                            "dimension": _dimension(row, d.answer, defects), "split": split,
                            "meta": json.dumps(meta, sort_keys=True)})
    if missing:
        raise StoreError(f"{len(missing)} labelled sample(s) are missing from their source folder (e.g. {missing[0]!r})")
    if bad_reasoning and not drop_bad_reasoning:
        more = f" (and {len(bad_reasoning) - 3} more)" if len(bad_reasoning) > 3 else ""
        raise StoreError(
            f"{len(bad_reasoning)} sample(s) carry reasoning that contradicts their label: "
            + "; ".join(bad_reasoning[:3]) + more
            + ". Fix those labels, or export without that reasoning (drop_bad_reasoning=True, --drop-bad-reasoning)"
        )
    if not samples:
        raise StoreError(f"no agreed labels to export for dataset {dataset!r}")
    parents = sorted({src for src, _ in groups})
    save_split(samples, out, split, name=name or out.name, parent=parents[0] if len(parents) == 1 else ",".join(parents))
    status = Counter(d.status for d in decisions.values())
    return {"out": str(out), "split": split, "exported": len(samples), "ties": status["tie"],
            "flagged": status["flagged"], "unlabelled": status["unlabelled"],
            "below_min_votes": status["agreed"] - len(samples), "reasoning_dropped": len(bad_reasoning)}
