"""The paper's evaluation metric, the public API every other part of the lab uses.

A screening answer names the acceptable candidates among A, B, C, D as letters in
order ("AC", "BCD") or "N" when none is acceptable. A prediction is *correct* when
it names at least one option and every option it names is in the label set; "N"
is correct only when the label is "N" (paper, Section 5.1).

    >>> parse_answer("<think>A is warped.</think><answer>b, c</answer>")
    'BC'
    >>> is_correct("B", "BC"), is_correct("BD", "BC"), is_correct("N", "BC")
    (True, False, False)
    >>> random_baseline(["AB", "N"])   # mean length 1.5 over 5 choices
    30.0

The rewards in `labkit.rewards` are built on these functions, so the RL reward and
the evaluation metric cannot drift apart.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Iterable, Sequence

LETTERS = "ABCD"
NONE_ANSWER = "N"
CHOICES = LETTERS + NONE_ANSWER  # five choices: the random baseline divides by 5

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
# Characters that may separate letters in an answer: "A, C", "A C", "A/C", "A and C".
_SEPARATORS = re.compile(r"(\band\b|[\s,;/&+|.\-]|\"|')+", re.IGNORECASE)
_NONE_WORDS = {"none", "n", "no", "nothing", "none of them", "none acceptable"}


class AnswerError(ValueError):
    """A label that is not a valid screening answer."""


def _canonical_or_none(fragment: str) -> str | None:
    """Canonical form of a bare answer fragment, or None when it is not one."""
    text = fragment.strip().strip(".").strip()
    if not text:
        return None
    if text.lower() in _NONE_WORDS:
        return NONE_ANSWER
    compact = _SEPARATORS.sub("", text).upper()
    if not compact or not re.fullmatch(r"[A-DN]+", compact):
        return None
    letters = set(compact)
    if NONE_ANSWER in letters:
        # "N" mixed with letters contradicts itself: no valid answer.
        return NONE_ANSWER if letters == {NONE_ANSWER} else None
    return "".join(sorted(letters))


def parse_answer(text: str | None) -> str | None:
    """The canonical answer in a model response, or None when there is no valid one.

    CoT form: the content of the last ``<answer>…</answer>`` tag. Direct form: the
    whole response is a bare answer ("A", "a, c", "None"). Returns None for N mixed
    with letters, letters outside A–D, an empty answer tag, or text with no answer.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"parse_answer expects a string, got {type(text).__name__}")
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return _canonical_or_none(tags[-1])
    if "<answer>" in text.lower() or "<think>" in text.lower():
        # A CoT response whose answer tag never closed: no answer, not a guess.
        return None
    return _canonical_or_none(text)


def canonical_answer(label: str) -> str:
    """Canonicalise a label ("ca" -> "AC", "none" -> "N"); raise AnswerError if invalid."""
    if not isinstance(label, str):
        raise AnswerError(f"answer must be a string, got {label!r}")
    canon = _canonical_or_none(label)
    if canon is None:
        raise AnswerError(f"invalid answer {label!r}: expected letters from A-D in order (e.g. 'AC') or 'N'")
    return canon


def is_correct(prediction: str | None, label: str) -> bool:
    """The paper's metric on canonical answers; None (unparsed) is always wrong."""
    if prediction is None:
        return False
    pred = canonical_answer(prediction)
    gold = canonical_answer(label)
    if pred == NONE_ANSWER or gold == NONE_ANSWER:
        return pred == gold
    return set(pred) <= set(gold)


def random_baseline(labels: Iterable[str]) -> float:
    """Expected score of a uniform guess among five choices, in percent: mean label length / 5.

    "N" has length 1. This is an expectation, not a simulation (paper, Section 5.1).
    """
    lengths = [len(canonical_answer(label)) for label in labels]
    if not lengths:
        return float("nan")
    return 100.0 * (sum(lengths) / len(lengths)) / len(CHOICES)


def score(
    predictions: Sequence[str | None],
    labels: Sequence[str],
    dimensions: Sequence[str] | None = None,
) -> dict:
    """Score predictions against labels, overall and per dimension.

    Returns ``overall`` (percent), ``per_dimension`` ({dimension: percent}),
    ``random_baseline`` (percent, same samples), ``random_per_dimension``,
    ``n`` (samples), ``unparsed`` (count of None predictions), ``n_per_dimension``.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if dimensions is not None and len(dimensions) != len(labels):
        raise ValueError(f"{len(dimensions)} dimensions for {len(labels)} labels")
    correct = [is_correct(p, g) for p, g in zip(predictions, labels)]
    n = len(labels)
    result = {
        "overall": 100.0 * sum(correct) / n if n else float("nan"),
        "random_baseline": random_baseline(labels),
        "n": n,
        "unparsed": sum(p is None for p in predictions),
        "per_dimension": {},
        "random_per_dimension": {},
        "n_per_dimension": {},
    }
    if dimensions is not None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, dim in enumerate(dimensions):
            groups[dim].append(i)
        for dim in sorted(groups):
            idx = groups[dim]
            result["per_dimension"][dim] = 100.0 * sum(correct[i] for i in idx) / len(idx)
            result["random_per_dimension"][dim] = random_baseline([labels[i] for i in idx])
            result["n_per_dimension"][dim] = len(idx)
    return result


def auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance a random positive outranks a random negative.

    Ties count half (the Mann-Whitney form). NaN when either class is empty.

        >>> auc([0.9, 0.2, 0.6], [True, False, False])
        1.0
    """
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    if not pos or not neg:
        return float("nan")
    # rank-sum form, O(n log n): average ranks over ties
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, p in zip(ranks, positives) if p)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def candidate_auc(
    scores: Sequence[Sequence[float]], candidate_defects: Sequence[Sequence[Sequence[str]]]
) -> dict:
    """Per-candidate acceptable-vs-defective AUC of scores (higher = more acceptable).

    ``scores[i][k]`` scores candidate k of sample i; ``candidate_defects[i][k]`` lists its defect
    tags (empty = acceptable). Returns ``overall`` (all candidates pooled), ``first`` (candidate
    A only: no earlier verdict in a reply can leak into it), ``per_dimension`` (each defect
    dimension's candidates against all acceptable ones) and ``n`` (candidates).

        >>> candidate_auc([[0.9, 0.1]], [[[], ["physical shadow"]]])["overall"]
        1.0
    """
    if len(scores) != len(candidate_defects):
        raise ValueError(f"{len(scores)} score rows for {len(candidate_defects)} samples")
    flat, ok, tags, first_s, first_ok = [], [], [], [], []
    for row, defects in zip(scores, candidate_defects):
        if len(row) != len(defects):
            raise ValueError(f"{len(row)} scores for {len(defects)} candidates")
        for k, (s, d) in enumerate(zip(row, defects)):
            flat.append(float(s))
            ok.append(not d)
            tags.append(set(d))
            if k == 0:
                first_s.append(float(s))
                first_ok.append(not d)
    per_dim = {}
    for dim in sorted(set().union(*tags)) if tags else []:
        idx = [i for i, t in enumerate(tags) if not t or dim in t]
        per_dim[dim] = auc([flat[i] for i in idx], [ok[i] for i in idx])
    return {
        "overall": auc(flat, ok),
        "first": auc(first_s, first_ok),
        "per_dimension": per_dim,
        "n": len(flat),
    }


def format_table(rows: dict[str, dict], dimensions: Sequence[str] | None = None) -> str:
    """A plain-text table of score dicts keyed by arm name (for CLI output)."""
    if dimensions is None:
        dims: list[str] = []
        for r in rows.values():
            for d in r.get("per_dimension", {}):
                if d not in dims:
                    dims.append(d)
    else:
        dims = list(dimensions)
    short = {d: d.split("_")[0][:10] for d in dims}
    header = ["arm", "overall", "random", "n", "unparsed"] + [short[d] for d in dims]
    lines = [header]
    for name, r in rows.items():
        def fmt(x):
            return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
        line = [name, fmt(r.get("overall")), fmt(r.get("random_baseline")), str(r.get("n", "-")), str(r.get("unparsed", "-"))]
        line += [fmt(r.get("per_dimension", {}).get(d)) for d in dims]
        lines.append(line)
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    out = []
    for j, row in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
