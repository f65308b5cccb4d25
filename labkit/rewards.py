"""GRPO rewards with TRL's signature, built on `labkit.metrics` so reward and metric agree.

Each reward takes ``completions`` (plain strings or conversational message lists) and
the dataset columns as keyword arguments (the label column is ``answer``) and
returns one float per completion. ``REWARDS`` maps recipe names to functions:

- ``format``: 1.0 when the completion is ``<think>…</think><answer>…</answer>`` with a
  valid answer inside, else 0.0;
- ``accuracy``: 1.0 when the parsed answer equals the label exactly, else 0.0;
- ``dpa`` (dynamic proportional accuracy, the paper's partial credit):
  len(pred) / len(label) when pred ⊆ label, else 0.0; "N" matches only "N".

GRPO is ``format`` + ``accuracy``; DPA-GRPO is ``format`` + ``dpa``. The generalisation
benchmarks use ``mc_format`` + ``mc_accuracy`` (`labkit.mc.metrics`).
"""
from __future__ import annotations

from typing import Callable

from labkit.completions import completion_text, has_format
from labkit.mc.metrics import MC_REWARDS
from labkit.metrics import NONE_ANSWER, canonical_answer, is_correct, parse_answer

def _labels(answer, n: int) -> list[str]:
    if answer is None:
        raise ValueError("reward needs the dataset's 'answer' column")
    if isinstance(answer, str):
        answer = [answer] * n
    if len(answer) != n:
        raise ValueError(f"{len(answer)} answers for {n} completions")
    return [canonical_answer(a) for a in answer]


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 for exactly one think block followed by one answer block holding a valid answer."""
    return [1.0 if has_format(completion_text(c)) else 0.0 for c in completions]


def accuracy_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 when the parsed answer equals the label exactly (binary accuracy)."""
    labels = _labels(answer, len(completions))
    return [1.0 if parse_answer(completion_text(c)) == gold else 0.0 for c, gold in zip(completions, labels)]


def dpa_score(prediction: str | None, label: str) -> float:
    """Dynamic proportional accuracy of one canonical prediction."""
    if prediction is None:
        return 0.0
    gold = canonical_answer(label)
    if prediction == NONE_ANSWER or gold == NONE_ANSWER:
        return 1.0 if prediction == gold else 0.0
    if set(prediction) <= set(gold):
        return len(prediction) / len(gold)
    return 0.0


def dpa_reward(completions, answer=None, **kwargs) -> list[float]:
    """Partial credit: the share of the label's letters named, when nothing wrong is named."""
    labels = _labels(answer, len(completions))
    return [dpa_score(parse_answer(completion_text(c)), gold) for c, gold in zip(completions, labels)]


def metric_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 when the evaluation metric counts the answer correct (for single-answer data)."""
    labels = _labels(answer, len(completions))
    return [1.0 if is_correct(parse_answer(completion_text(c)), gold) else 0.0 for c, gold in zip(completions, labels)]


REWARDS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "accuracy": accuracy_reward,
    "dpa": dpa_reward,
    "metric": metric_reward,
}
# Single-answer multiple-choice benchmarks (RealWorldQA, MuirBench, BLINK): ``mc_format`` and
# ``mc_accuracy`` parse one letter in each item's own range (options beyond D exist).
REWARDS.update(MC_REWARDS)


def get_rewards(names: list[str] | dict[str, float]) -> tuple[list[Callable], list[float]]:
    """Reward functions and weights from recipe names (a list, or {name: weight})."""
    if isinstance(names, dict):
        items = list(names.items())
    else:
        items = [(n, 1.0) for n in names]
    funcs, weights = [], []
    for name, weight in items:
        if name not in REWARDS:
            raise KeyError(f"unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}")
        funcs.append(REWARDS[name])
        weights.append(float(weight))
    return funcs, weights
