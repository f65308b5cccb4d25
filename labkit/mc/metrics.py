"""Single-answer multiple-choice scoring: letter parsing, accuracy, GRPO rewards.

The generalisation benchmarks (RealWorldQA, MuirBench, BLINK; see `labkit.mc.sources`)
ask for exactly one option letter. The lab's screening metric (`labkit.metrics`) knows the
letters A-D plus "N" (= none acceptable) and accepts several letters; here an item may
have up to 26 options (MuirBench has questions with options beyond D), "N" may be an
ordinary option, and exactly one letter is allowed. So this module parses letters in the
item's own range ``A .. chr(ord('A') + n_options - 1)`` and counts a prediction correct
when it equals the answer letter. On items with options A-D and one-letter answers that
is exactly what `labkit.metrics.is_correct` decides (a test checks the agreement).

    >>> parse_mc_answer("<think>The cup is left.</think><answer>(B)</answer>", 4)
    'B'
    >>> parse_mc_answer("E. a red car", 5), parse_mc_answer("E", 4), parse_mc_answer("AB", 4)
    ('E', None, None)
    >>> round(score_mc(["A", None, "C"], ["A", "B", "D"], [2, 4, 4])["overall"], 2)
    33.33

Rewards (registered in `labkit.rewards.REWARDS`): ``mc_format`` (1.0 for
``<think>…</think><answer>X</answer>`` with one valid letter) and ``mc_accuracy``
(1.0 when the letter equals the answer). Both read the ``n_options`` dataset column.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Sequence

from labkit.completions import completion_text, has_format

MAX_OPTIONS = 26

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
# One letter, optionally in brackets, optionally after "option"/"the answer is", then
# nothing, or "." ":" ")" and the option's text: "B", "(B)", "B.", "B) a cat", "Option B".
_LETTER = re.compile(
    r"\s*(?:(?:the\s+)?(?:answer|option)(?:\s+is)?\s*[:=]?\s*)?([\(\[])?([A-Za-z])([\)\]])?(.*)",
    re.DOTALL | re.IGNORECASE,
)


def letters_for(n_options: int) -> str:
    """The option letters of an item with ``n_options`` options ("ABCD" for 4)."""
    if not isinstance(n_options, int) or not 2 <= n_options <= MAX_OPTIONS:
        raise ValueError(f"an item needs 2 to {MAX_OPTIONS} options, got {n_options!r}")
    return "".join(chr(ord("A") + i) for i in range(n_options))


def parse_letter(fragment: str | None, n_options: int) -> str | None:
    """The option letter of a bare answer fragment ("b", "(B)", "B. text"), or None."""
    if fragment is None:
        return None
    text = fragment.strip()
    if not text:
        return None
    match = _LETTER.fullmatch(text)
    if not match:
        return None
    opened, letter, closed, rest = match.groups()
    rest_ok = (
        not rest.strip()
        or rest[0] in ".:)"
        or (closed is not None and rest[0].isspace())  # "(B) a cat"
    )
    if not rest_ok or (opened and not closed and rest.strip()):
        return None
    letter = letter.upper()
    return letter if letter in letters_for(n_options) else None


def parse_mc_answer(text: str | None, n_options: int) -> str | None:
    """The single option letter in a model response, or None when there is no valid one.

    CoT form: the content of the last ``<answer>…</answer>`` tag. Direct form: the whole
    response. Several letters, a letter outside the item's range or an unclosed tag give None.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"parse_mc_answer expects a string, got {type(text).__name__}")
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return parse_letter(tags[-1], n_options)
    if "<answer>" in text.lower() or "<think>" in text.lower():
        return None  # a CoT response that never closed its answer: no answer, not a guess
    return parse_letter(text, n_options)


def random_baseline_mc(n_options: Sequence[int]) -> float:
    """Expected accuracy (percent) of a uniform guess: the mean of 1 / n_options."""
    if not n_options:
        return float("nan")
    return 100.0 * sum(1.0 / n for n in n_options) / len(n_options)


def score_mc(
    predictions: Sequence[str | None],
    answers: Sequence[str],
    n_options: Sequence[int],
    categories: Sequence[str] | None = None,
) -> dict:
    """Accuracy of parsed letters (None = unparsed = wrong), micro and macro over categories.

    Returns ``overall`` (micro accuracy, percent), ``macro`` (mean of the per-category
    accuracies; equals ``overall`` without categories), ``per_dimension`` (per category,
    the key `labkit.metrics.format_table` reads), ``n_per_dimension``, ``random_baseline``,
    ``random_per_dimension``, ``n`` and ``unparsed``.
    """
    if not (len(predictions) == len(answers) == len(n_options)):
        raise ValueError(f"{len(predictions)} predictions, {len(answers)} answers, {len(n_options)} option counts")
    if categories is not None and len(categories) != len(answers):
        raise ValueError(f"{len(categories)} categories for {len(answers)} answers")
    for i, (gold, n) in enumerate(zip(answers, n_options)):
        if gold is None:
            raise ValueError(f"item {i} has no answer (hidden test answers cannot be scored)")
        if gold not in letters_for(n):
            raise ValueError(f"item {i}: answer {gold!r} is not one of the letters {letters_for(n)}")
    correct = [p is not None and p == g for p, g in zip(predictions, answers)]
    n = len(answers)
    result: dict[str, Any] = {
        "overall": 100.0 * sum(correct) / n if n else float("nan"),
        "random_baseline": random_baseline_mc(list(n_options)),
        "n": n,
        "unparsed": sum(p is None for p in predictions),
        "per_dimension": {},
        "random_per_dimension": {},
        "n_per_dimension": {},
    }
    if categories is not None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, cat in enumerate(categories):
            groups[cat or "unknown"].append(i)
        for cat in sorted(groups):
            idx = groups[cat]
            result["per_dimension"][cat] = 100.0 * sum(correct[i] for i in idx) / len(idx)
            result["random_per_dimension"][cat] = random_baseline_mc([n_options[i] for i in idx])
            result["n_per_dimension"][cat] = len(idx)
    per = result["per_dimension"]
    result["macro"] = sum(per.values()) / len(per) if per else result["overall"]
    return result


# ----------------------------------------------------------------------------- rewards

def _per_completion(value, n: int, what: str) -> list:
    if value is None:
        raise ValueError(f"the MC rewards need the dataset's {what!r} column")
    if isinstance(value, (str, int)):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{len(value)} {what} values for {n} completions")
    return value


def mc_format_reward(completions, n_options=None, **kwargs) -> list[float]:
    """1.0 for one think block then one answer block holding exactly one valid letter."""
    counts = _per_completion(n_options, len(completions), "n_options")
    return [
        1.0 if has_format(completion_text(c), lambda text, n=int(n): parse_mc_answer(text, n)) else 0.0
        for c, n in zip(completions, counts)
    ]


def mc_accuracy_reward(completions, answer=None, n_options=None, **kwargs) -> list[float]:
    """1.0 when the parsed letter equals the answer letter (binary accuracy, no DPA)."""
    answers = _per_completion(answer, len(completions), "answer")
    counts = _per_completion(n_options, len(completions), "n_options")
    return [
        1.0 if parse_mc_answer(completion_text(c), int(n)) == str(gold).upper() else 0.0
        for c, gold, n in zip(completions, answers, counts)
    ]


MC_REWARDS = {"mc_format": mc_format_reward, "mc_accuracy": mc_accuracy_reward}
