"""A completion's text and its ``<think>…</think><answer>…</answer>`` shape.

Shared by the lab's rewards (`labkit.rewards`) and the multiple-choice rewards
(`labkit.mc.metrics`), so both read TRL's plain or conversational completions the same
way and agree on what a well-formed reply is.

    >>> completion_text([{"role": "assistant", "content": "<think>x</think><answer>A</answer>"}])
    '<think>x</think><answer>A</answer>'
    >>> has_format("<think>x</think><answer>A</answer>"), has_format("<answer>A</answer>")
    (True, False)
"""
from __future__ import annotations

import re
from typing import Any

from labkit.metrics import parse_answer

_FORMAT = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of one completion, plain or conversational (TRL passes either)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content", "")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    if isinstance(completion, (list, tuple)):
        # Conversational: a list of messages; the assistant's reply is the last one.
        if not completion:
            return ""
        return completion_text(completion[-1])
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def has_format(text: str, parse=parse_answer) -> bool:
    """Exactly one think block, then one answer block whose content ``parse`` accepts."""
    match = _FORMAT.fullmatch(text)
    return (
        match is not None
        and "<think>" not in match.group(1)
        and "<answer>" not in match.group(1)
        and parse(text) is not None
    )
