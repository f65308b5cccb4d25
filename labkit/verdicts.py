"""Per-candidate verdicts in a model's reasoning: what it says about A-D, and how sure it is.

Two readers of the same reasoning:

- `parse_verdicts(text)`: ``{"A": True, "B": False, "C": None, "D": True}``, the *last*
  statement the reasoning makes about each candidate, whatever order the model writes them in.
  It reads the lab's short style (``B: no, wrong shadow.``, ``A: ok.``) and sentence styles
  (``C is not acceptable``, ``B fails on placement layout``, ``D passes``); None where the
  reasoning says nothing about a letter.
- `verdict_probs(token_ids, logits, tokenizer)`: the model's own probability that each
  candidate is acceptable, read at its verdict token: the ``ok``/``no`` word right after
  ``A:`` … ``D:`` in the generated reply, as P(ok) = softmax(logit_ok, logit_no)[0]. Used by
  `labkit.evaluate` (``verdict_scores=True``) for the per-candidate AUC: a ranking measure that
  moves while accuracy still sits at the majority class.

- `stated_answer(text)`: the final answer a reasoning text gives itself (its last
  ``<answer>`` tag, else its last "the answer is …" sentence), canonical, or None. The
  annotation store refuses a label whose reasoning states another answer than the label.

    >>> parse_verdicts("<think>A: ok. B: no, wrong shadow. B: ok.</think><answer>AB</answer>")
    {'A': True, 'B': True, 'C': None, 'D': None}
    >>> stated_answer("A floats; B and D are fine, so the answer is B, D.")
    'BD'
"""
from __future__ import annotations

import re
from typing import Sequence

from labkit.metrics import LETTERS, AnswerError, canonical_answer


OK_WORD, NO_WORD = "ok", "no"
# Sentence forms of a verdict about letter L (checked after the leading word of an "L:" statement).
_NEGATIVE = r"\b{L}\b[^.;]*?\b(?:is not acceptable|isn't acceptable|is unacceptable|fails|is rejected|does not pass)"
_POSITIVE = r"\b{L}\b[^.;]*?\b(?:is acceptable|passes|is fine|is ok|meets the requirements)"
_LEADING_OK = re.compile(r"^\s*(?:ok|okay|good|fine|acceptable|yes|pass(?:es)?)\b", re.IGNORECASE)
_LEADING_NO = re.compile(r"^\s*(?:no|not acceptable|unacceptable|bad|fail(?:s)?|reject(?:ed)?)\b", re.IGNORECASE)
_STATEMENT = re.compile(r"(?<![A-Za-z])([A-D]):")


def _reasoning(text: str) -> str:
    """The part of a reply that holds the reasoning: inside <think>, else everything before <answer>."""
    m = re.search(r"<think>(.*?)(?:</think>|$)", text, flags=re.DOTALL)
    if m:
        return m.group(1)
    return text.split("<answer>")[0]


def parse_verdicts(text: str | None) -> dict[str, bool | None]:
    """The last verdict the reasoning gives each candidate: True (acceptable), False, or None."""
    out: dict[str, bool | None] = {letter: None for letter in LETTERS}
    if not text:
        return out
    body = _reasoning(text)
    marks = list(_STATEMENT.finditer(body))
    events: list[tuple[int, str, bool]] = []  # (position, letter, verdict): the last position wins
    for k, m in enumerate(marks):
        letter = m.group(1)
        end = marks[k + 1].start() if k + 1 < len(marks) else len(body)
        segment = body[m.end():end]
        if _LEADING_NO.match(segment):
            events.append((m.start(), letter, False))
        elif _LEADING_OK.match(segment):
            events.append((m.start(), letter, True))
    for letter in LETTERS:
        for pattern, verdict in ((_NEGATIVE, False), (_POSITIVE, True)):
            for m in re.finditer(pattern.format(L=letter), body):
                events.append((m.end(), letter, verdict))
    for _, letter, verdict in sorted(events):
        out[letter] = verdict
    return out


_ANSWER_TAGS = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
# "the answer is BD", "answer: A, C", "final answer - N", "the answer is none"
_ANSWER_SENTENCE = re.compile(
    r"\banswer\s*(?:is|:|-|=)\s*\**\s*((?:none\b|N\b)|[A-D](?:\s*(?:,|and|&|\+)?\s*[A-D](?![A-Za-z]))*(?![A-Za-z]))",
    re.IGNORECASE,
)


def stated_answer(text: str | None) -> str | None:
    """The canonical answer a reasoning text states for itself, or None when it states none.

    The last ``<answer>…</answer>`` tag wins; without tags, the last "answer is X" / "answer: X"
    phrase. An invalid stated answer (e.g. ``<answer>AN</answer>``) also gives None.
    """

    if not text:
        return None
    tags = _ANSWER_TAGS.findall(text)
    found = tags[-1] if tags else None
    if found is None:
        phrases = _ANSWER_SENTENCE.findall(text)
        found = phrases[-1] if phrases else None
    if found is None:
        return None
    letters = re.sub(r"(?i)\band\b|[,&+\s*]", "", found)
    try:
        return canonical_answer(letters)
    except AnswerError:
        return None


def verdict_token_ids(tokenizer) -> tuple[int, int, list[int], int] | None:
    """(ok id, no id, letter ids A-D, colon id) when each is one token of the tokenizer, else None."""
    def single(text):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[0] if len(ids) == 1 else None

    ok_id, no_id = single(" " + OK_WORD), single(" " + NO_WORD)
    letters = [single(letter) for letter in LETTERS]
    colon = single(":")
    if None in (ok_id, no_id, colon) or None in letters:
        return None
    return ok_id, no_id, letters, colon


def verdict_probs(token_ids: Sequence[int], logits, ids: tuple[int, int, list[int], int]) -> list[float | None]:
    """P(ok) at the first verdict token after each of ``A:`` … ``D:`` in one generated reply.

    ``token_ids``: the generated tokens; ``logits``: the raw logits that produced them, shape
    [len(token_ids), vocab] (``generate(output_logits=True)``); ``ids``: `verdict_token_ids`.
    A letter without an ``L: ok``/``L: no`` statement gets None.
    """
    import torch

    ok_id, no_id, letter_ids, colon = ids
    probs: list[float | None] = [None] * len(LETTERS)
    for t in range(2, len(token_ids)):
        if token_ids[t] not in (ok_id, no_id) or token_ids[t - 1] != colon or token_ids[t - 2] not in letter_ids:
            continue
        c = letter_ids.index(token_ids[t - 2])
        if probs[c] is None:
            pair = logits[t, [ok_id, no_id]].float()
            probs[c] = float(torch.softmax(pair, 0)[0])
    return probs
