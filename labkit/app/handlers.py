"""Pure handler functions of the app: everything the UI does, without Gradio.

The UI (`labkit.app.ui`) only wires components to these functions and turns `UserError` into a
visible message. Tests call them directly (``tests/test_app_handlers.py``). This module holds
the screening side; the annotation side lives in `labkit.app.annotation` and is re-exported here, so
``from labkit.app import handlers as H`` reaches every handler.

- Screening: `read_upload` (an uploaded file as Gradio hands it over -> RGB image, clear error
  otherwise), `collect_images` (exactly five), `Screener` (the model, loaded once, with a lock)
  and `screen_stream` (yields the growing reasoning, the parsed answer and per-candidate views).
- Reasoning per candidate: `split_reasoning` gathers the parts of a chain of thought about
  A, B, C and D; each candidate's verdict is the reasoning's last statement about it
  (`labkit.verdicts.parse_verdicts`), else the parsed answer (`verdicts`); `reasoning_html`
  renders a response without raw tags (the thinking highlighted, the answer apart); badges are
  CSS, not emoji (which show as empty boxes without an emoji font).
- Messages for clients: `client_message` keeps server paths out of what a visitor sees.
- Serving: `throttle` (at most one UI update per interval), `image_file` (images as
  content-named files for Gradio).
- Annotation and login (`labkit.app.annotation`): `SampleIndex`, `build_label`, `save_label`,
  `undo_label`, `item_view`, `progress_figure`, `agreement_figure`, `read_auth_file`, `make_auth`.
"""
from __future__ import annotations

import hashlib
import html
import io
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from labkit.app.annotation import (  # re-exported: `from labkit.app import handlers as H` reaches every handler
    ADMIN_ROLES, CHOICES, DEFECT_TAGS, NONE_CHOICE, PROGRESS_BARS, REVIEW_ROLES, ROLES, UNSPECIFIED_DEFECT, ItemView,
    LoginLimiter, SampleIndex, User, add_user, agreement_figure, build_label, choices_of, cot_provenance, item_view,
    make_auth, parse_key, progress_figure, read_auth_file, read_mined_responses, save_label, undo_label,
)
from labkit.app.uploads import (  # re-exported, as above
    WHAT, UserError, client_message, collect_images, downscale_note, read_upload, upload_path,
)
from labkit import models  # (models.load looked up per call: tests count the loads)
from labkit.conversions import sample_images, screening_message
from labkit.infer import stream_response
from labkit.metrics import LETTERS, NONE_ANSWER, is_correct, parse_answer
from labkit.prompts import screening_prompt
from labkit.screen import default_conversion
from labkit.verdicts import parse_verdicts

# ----------------------------------------------------------------------------- the model

@dataclass
class Screener:
    """A model and its processor, loaded once; generation is serialised by a lock."""

    model: Any
    processor: Any
    name: str = "model"
    max_new_tokens: int = 256
    # How the model is asked: the prompt settings it was trained with (its recipe's conversion,
    # `labkit.screen.default_conversion`), so a small-mode model sees original|candidate pairs
    # at 64 px with the short prompt, and a paper-mode model five separate images.
    layout: str = "separate"
    prompt_style: str = "full"
    variant: str = "train"
    image_size: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path, **kw) -> "Screener":
        model, processor = models.load(path)
        folder = Path(str(path))
        # A trained arm's model lives in ARM/final: name it after the arm, not "final".
        name = folder.parent.name if folder.name in ("final", "model") and folder.parent.name else folder.name
        conv = default_conversion(path)
        for key, attr in (("layout", "layout"), ("prompt", "prompt_style"), ("variant", "variant"), ("image_size", "image_size")):
            kw.setdefault(attr, conv[key])
        return cls(model, processor, name=name, **kw)

    def stream(self, images: list, form: str = "cot", variant: str | None = None) -> Iterator[str]:
        """Yield the response as it grows (each item: the whole text so far)."""
        prompt = screening_message(self.layout, screening_prompt(form, self.layout, variant or self.variant, self.prompt_style))
        model_images = sample_images({"id": "upload", "original": images[0], "candidates": images[1:]}, self.layout,
                                     self.image_size)
        # One generation at a time: two interleaved generate() calls would only share 2 cores.
        with self.lock:
            yield from stream_response(self.model, self.processor, model_images, prompt,
                                       max_new_tokens=self.max_new_tokens)


# ----------------------------------------------------------------------------- reasoning per candidate

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
# Where the reasoning about one candidate starts: "A:", "A)", "(A)", "Image A", "candidate B is",
# "C -", "D looks". The letter must be a capital standing alone.
_MARKER = re.compile(
    r"(?:^|(?<=[\s.;,(\[>]))"
    r"(?:(?:image|candidate|option|picture)\s+\(?(?P<l1>[A-D])\)?(?![A-Za-z0-9])"
    r"|\(?(?P<l2>[A-D])\)?(?=\s*[:)\-–—]|\s+(?:is|has|keeps|looks|shows|fails|passes|meets|changes|adds|"
    r"stands|floats|sinks|loses|matches|was|seems|appears|contains|differs)\b))",
    re.IGNORECASE,
)


# A closing summary ("The acceptable images are B and D, so the answer is BD.") is about all
# candidates: it is cut from the last candidate's part.
_CONCLUSION = re.compile(
    r"(?:^|(?<=[.!?;]\s))(?:the acceptable|so the answer|the answer|therefore|thus|in summary|overall|"
    r"none of the|no candidate|all four|every candidate)\b",
    re.IGNORECASE,
)


def reasoning_text(response: str) -> str:
    """The reasoning part of a response: inside <think>, or everything before <answer>."""
    m = _THINK.search(response or "")
    if m:
        return m.group(1).strip()
    return re.split(r"<answer>", response or "", flags=re.IGNORECASE)[0].strip()


def split_reasoning(response: str) -> dict[str, str]:
    """The reasoning about each candidate, keyed A-D ('' when the text says nothing about it).

    Every stretch of text from a mention of a candidate ("A:", "Image B", "C is ...") up to the
    next mention of *another* candidate belongs to it, in whatever order the model goes (a
    candidate mentioned twice gets both parts); text before the first mention and a closing
    summary after the last one are left out. Works on a partial (still streaming) response too.
    """
    text = reasoning_text(response)
    marks: list[tuple[int, str]] = []
    for m in _MARKER.finditer(text):
        letter = (m.group("l1") or m.group("l2") or "")
        if not letter.isupper() and m.group("l2"):
            continue  # a lowercase "a is" is an article, not candidate A
        letter = letter.upper()
        if letter and (not marks or marks[-1][1] != letter):
            marks.append((m.start(), letter))
    parts: dict[str, list[str]] = {letter: [] for letter in LETTERS}
    for i, (start, letter) in enumerate(marks):
        if i + 1 < len(marks):
            end = marks[i + 1][0]
        else:
            summary = _CONCLUSION.search(text, start + 1)
            end = summary.start() if summary else len(text)
        parts[letter].append(text[start:end].strip())
    return {letter: " ".join(p for p in parts[letter] if p) for letter in LETTERS}


def verdicts(answer: str | None) -> dict[str, str]:
    """Per candidate: "accepted", "rejected", or "unknown" when no valid answer was parsed."""
    if answer is None:
        return {letter: "unknown" for letter in LETTERS}
    return {letter: ("accepted" if letter in answer else "rejected") for letter in LETTERS}


_BADGE_TEXT = {"accepted": "accepted", "rejected": "rejected", "unknown": "waiting", "invalid": "no valid answer"}


def badge(kind: str, text: str | None = None) -> str:
    """A CSS badge (``.badge.badge-KIND``, styled in `labkit.app.ui.CSS`): no emoji, readable anywhere."""
    return f"<span class='badge badge-{kind}'>{html.escape(text or _BADGE_TEXT.get(kind, kind))}</span>"


def candidate_verdicts(response: str, answer: str | None, done: bool) -> dict[str, tuple[str, str]]:
    """Per candidate: (verdict, where it comes from). The reasoning's last statement about the
    letter wins (``reasoning``); else the parsed answer once done (``answer``)."""
    stated = parse_verdicts(response)
    from_answer = verdicts(answer) if done and answer is not None else None
    out = {}
    for letter in LETTERS:
        if stated[letter] is not None:
            out[letter] = ("accepted" if stated[letter] else "rejected", "reasoning")
        elif from_answer is not None:
            out[letter] = (from_answer[letter], "answer")
        else:
            out[letter] = ("invalid" if done else "unknown", "")
    return out


def candidate_markdown(letter: str, verdict: str, reasoning: str, note: str = "") -> str:
    """Markdown beside candidate ``letter``: its verdict badge, a note and the reasoning about it."""
    body = html.escape(reasoning) if reasoning else "_(the reasoning does not mention this candidate)_"
    return f"### {letter}: {badge(verdict)}{note}\n\n{body}"


def reasoning_html(response: str, done: bool = False) -> str:
    """A response as HTML without raw tags: the thinking in a highlighted block, the answer apart."""
    text = response or ""
    think = reasoning_text(text)
    answer_part = ""
    if done or re.search(r"</answer>", text, re.IGNORECASE):
        answer = parse_answer(text)
        answer_part = ("<div class='final-answer'>Answer: " + (badge("accepted", answer) if answer else
                       badge("invalid")) + "</div>")
    if not think:
        return answer_part or "<div class='think empty'>(no reasoning yet)</div>"
    return f"<div class='think'>{html.escape(think)}</div>{answer_part}"


@dataclass
class ScreenResult:
    """One step of a streaming screening: everything the Screen tab shows."""

    reasoning: str
    answer: str | None
    done: bool
    per_candidate: dict[str, str]  # letter -> markdown
    status: str

    def answer_text(self) -> str:
        if self.answer is None:
            return "(no valid answer)" if self.done else ""
        return self.answer


def screen_step(response: str, done: bool, elapsed: float, first_token_s: float | None,
                truth: str | None = None) -> ScreenResult:
    """The view of a (partial) response. ``truth``: the sample's true label, when known: the
    final status then says whether the model was right (the paper's metric)."""
    answer = parse_answer(response) if done else None
    parts = split_reasoning(response)
    marks = candidate_verdicts(response, answer, done)
    per = {}
    for letter in LETTERS:
        verdict, source = marks[letter]
        note = ""
        if done and source == "reasoning" and answer is not None and verdicts(answer)[letter] != verdict:
            note = " " + badge("note", f"final answer: {verdicts(answer)[letter]}")
        per[letter] = candidate_markdown(letter, verdict, parts[letter], note)
    if done:
        summary = (
            "none acceptable (N)" if answer == NONE_ANSWER
            else f"acceptable: {', '.join(answer)}" if answer else "the response holds no valid answer"
        )
        ttft = f", first token after {first_token_s:.2f} s" if first_token_s is not None else ""
        status = f"Done in {elapsed:.2f} s{ttft}: {summary}."
        if truth:
            right = answer is not None and is_correct(answer, truth)
            status += f" True label: **{truth}** " + (badge("accepted", "model right") if right else
                                                       badge("rejected", "model wrong"))
    else:
        status = f"Reasoning… {elapsed:.1f} s"
    return ScreenResult(response, answer, done, per, status)


def screen_stream(screener: Screener, images: list, form: str = "cot", truth: str | None = None) -> Iterator[ScreenResult]:
    """Stream a screening: an empty view, one `ScreenResult` per new token, then the final one.

    A model failure raises RuntimeError with the cause; the caller shows it and keeps serving.
    """
    if form not in ("cot", "direct"):
        raise UserError(f"unknown prompt form {form!r}; choose cot or direct")
    t0 = time.perf_counter()
    first = None
    response = ""
    yield screen_step(response, False, 0.0, None)
    try:
        for text in screener.stream(images, form):
            if not text:
                continue
            if first is None:
                first = time.perf_counter() - t0
            response = text
            yield screen_step(response, False, time.perf_counter() - t0, first)
    except UserError:
        raise
    except Exception as exc:
        raise RuntimeError(f"the model failed: {type(exc).__name__}: {exc}") from exc
    yield screen_step(response, True, time.perf_counter() - t0, first, truth)


def throttle(steps: Iterator[ScreenResult], interval: float) -> Iterator[ScreenResult]:
    """Pass on the first step, then at most one step per ``interval`` seconds, and always the last
    (the final answer). Each passed step holds the whole text so far, so nothing is lost."""
    last = None
    pending = None
    for step in steps:
        now = time.perf_counter()
        if step.done or last is None or now - last >= interval:
            last, pending = now, None
            yield step
        else:
            pending = step
    if pending is not None:
        yield pending


def image_file(img, folder: str | os.PathLike) -> str:
    """Save an image as PNG named by its content hash (atomically; kept when it exists) and
    return the path.

    The app hands Gradio these paths instead of PIL images: Gradio 6.31 rewrites the cache file
    of a returned PIL image in place, so two requests showing the same image at once could send
    a half-written file to a browser (seen as "Too much data for declared Content-Length").
    Gradio copies a returned *path* into its cache with an atomic rename.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)
