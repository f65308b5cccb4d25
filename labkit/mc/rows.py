"""One multiple-choice item (`MCItem`) from a row of BLINK, MuirBench or RealWorldQA as published.

The row parsers of `labkit.mc.sources`: `blink_item`, `muirbench_item` and
`realworldqa_item` check a row against its benchmark's published schema and build the item
(question with "[image k]" for MuirBench's placeholders, the images in order, the options,
the answer letter, the category); a malformed row raises `MCRowError` naming the file, the
row index and the idx. ``fail(problem)`` is the loader's way to raise it for the current row.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from labkit.data import SampleError, encode_image_cell, open_image
from labkit.mc.metrics import MAX_OPTIONS, letters_for

BLINK_IMAGE_COLUMNS = ("image_1", "image_2", "image_3", "image_4")
HIDDEN_WORDS = {"hidden"}  # what BLINK's test split holds in place of the answer (and None)
IMAGE_PLACEHOLDER = "<image>"


class MCRowError(ValueError):
    """A row that breaks its benchmark's published schema; names file, row index and idx."""

    def __init__(self, benchmark: str, where: str, row: int, idx: Any, problem: str):
        self.benchmark, self.where, self.row, self.idx, self.problem = benchmark, where, row, idx, problem
        super().__init__(f"{benchmark}: {where} row {row} (idx {idx!r}): {problem}")


@dataclass
class MCItem:
    """One single-answer multiple-choice item, whatever benchmark it came from."""

    id: str
    benchmark: str
    question: str
    options: list[str]
    images: list = field(repr=False)
    answer: str | None
    category: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_options(self) -> int:
        return len(self.options)

    def to_row(self) -> dict:
        """A row of the MC Parquet schema (images as PNG/original bytes)."""
        return {
            "id": self.id,
            "benchmark": self.benchmark,
            "question": self.question,
            "options": list(self.options),
            "images": [_image_cell(im, self.id, f"image {k}") for k, im in enumerate(self.images, 1)],
            "answer": self.answer,
            "category": self.category or "",
            "n_options": len(self.options),
            "meta": json.dumps(self.meta, sort_keys=True, default=str),
        }


# ----------------------------------------------------------------------------- helpers

def _image_cell(value: Any, sid: str, what: str) -> dict:
    """Arrow image cell: the original encoded bytes when we have them, else PNG."""
    return encode_image_cell(value, sid, what)


def _answer_letter(raw: Any, options: list[str], fail) -> str | None:
    """The answer as a letter in range; None when hidden; `fail` for anything else."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in HIDDEN_WORDS):
        return None
    if not isinstance(raw, str):
        fail(f"answer must be text, got {type(raw).__name__} {raw!r}")
    letters = letters_for(len(options))
    text = raw.strip()
    if not text:
        fail("answer is empty")
    m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", text)
    if m:
        letter = m.group(1).upper()
        if letter not in letters:
            fail(f"answer {raw!r} is not one of the {len(options)} options ({letters[0]}-{letters[-1]})")
        return letter
    # A word/number answer (RealWorldQA): the option whose text it is.
    norm = text.strip(".").strip().lower()
    hits = [letters[i] for i, opt in enumerate(options) if opt.strip().strip(".").strip().lower() == norm]
    if len(hits) == 1:
        return hits[0]
    fail(f"answer {raw!r} is neither an option letter ({letters[0]}-{letters[-1]}) nor the text of exactly one option")


def _check_options(options: Any, fail) -> list[str]:
    if options is None or not isinstance(options, (list, tuple)):
        fail(f"options must be a list of strings, got {type(options).__name__}")
    if not 2 <= len(options) <= MAX_OPTIONS:
        fail(f"expected 2 to {MAX_OPTIONS} options, got {len(options)}")
    out = []
    for i, opt in enumerate(options):
        if not isinstance(opt, str) or not opt.strip():
            fail(f"option {i} is empty or not text ({opt!r})")
        out.append(opt.strip())
    return out


def _check_images(images: list, sid: str, fail, check: bool) -> list:
    if not images:
        fail("no image")
    if check:
        for k, im in enumerate(images, 1):
            try:
                open_image(im, sid, f"image {k}")
            except SampleError as exc:
                fail(exc.problem)
    return images


# ----------------------------------------------------------------------------- row parsers

def blink_item(row: dict, fail, check_images: bool = True, config: str | None = None) -> MCItem:
    """A BLINK row -> MCItem. ``choices`` are the options; ``answer`` is "(A)"."""
    idx = str(row.get("idx"))
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        fail("question is empty")
    options = _check_options(row.get("choices"), fail)
    images = [row[c] for c in BLINK_IMAGE_COLUMNS if row.get(c) is not None]
    _check_images(images, idx, fail, check_images)
    category = row.get("sub_task") or config or ""
    answer = _answer_letter(row.get("answer"), options, fail)
    return MCItem(
        id=idx, benchmark="blink", question=question.strip(), options=options, images=images,
        answer=answer, category=str(category),
        meta={"prompt": row.get("prompt"), "published_answer": row.get("answer")},
    )


def muirbench_item(row: dict, fail, check_images: bool = True, config: str | None = None) -> MCItem:
    """A MuirBench row -> MCItem; ``<image>`` placeholders become "[image k]" in order."""
    idx = str(row.get("idx"))
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        fail("question is empty")
    options = _check_options(row.get("options"), fail)
    images = row.get("image_list")
    if not isinstance(images, (list, tuple)):
        fail(f"image_list must be a list of images, got {type(images).__name__}")
    images = list(images)
    if any(im is None for im in images):
        fail(f"image_list holds a missing image at position {[im is None for im in images].index(True) + 1}")
    placeholders = question.count(IMAGE_PLACEHOLDER) + sum(o.count(IMAGE_PLACEHOLDER) for o in options)
    if placeholders > len(images):
        fail(f"{placeholders} <image> placeholders in question and options but image_list has {len(images)} images")
    _check_images(images, idx, fail, check_images)
    counter = iter(range(1, placeholders + 1))

    def number(text: str) -> str:
        return re.sub(re.escape(IMAGE_PLACEHOLDER), lambda _: f"[image {next(counter)}]", text)

    question = number(question.strip())
    options = [number(o) for o in options]
    answer = _answer_letter(row.get("answer"), options, fail)
    counterpart = row.get("counterpart_idx")
    return MCItem(
        id=idx, benchmark="muirbench", question=question, options=options, images=images,
        answer=answer, category=str(row.get("task") or config or ""),
        meta={
            "image_relation": row.get("image_relation"),
            "image_type": row.get("image_type"),
            "counterpart_idx": None if counterpart in (None, "") else str(counterpart),
            "published_answer": row.get("answer"),
        },
    )


_RWQA_OPTION = re.compile(r"^\s*([A-Z])[.)]\s*(.+?)\s*$")


def split_realworldqa_question(text: str) -> tuple[str, list[str], str]:
    """(stem, options, trailing instruction) of a RealWorldQA question; options may be [].

    The options are the block of lines "A. …", "B. …", … (consecutive letters from A,
    blank lines allowed between them); fewer than two means a free-form question.
    """
    lines = text.strip().splitlines()
    for start, line in enumerate(lines):
        m = _RWQA_OPTION.match(line)
        if m and m.group(1) == "A":
            break
    else:
        return text.strip(), [], ""
    options: list[str] = []
    end = start
    for i in range(start, len(lines)):
        if not lines[i].strip():
            continue
        m = _RWQA_OPTION.match(lines[i])
        if not (m and m.group(1) == chr(ord("A") + len(options))):
            break
        options.append(m.group(2))
        end = i + 1
    if len(options) < 2:
        return text.strip(), [], ""
    return "\n".join(lines[:start]).strip(), options, "\n".join(lines[end:]).strip()


def realworldqa_item(row: dict, fail, check_images: bool = True, config: str | None = None, row_id: str = "") -> MCItem | None:
    """A RealWorldQA row -> MCItem, or None for a free-form question (no lettered options)."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        fail("question is empty")
    if row.get("image") is None:
        fail("image is missing")
    images = [row["image"]]
    _check_images(images, row_id, fail, check_images)
    stem, options, instruction = split_realworldqa_question(question)
    if not options:
        return None
    if not stem:
        fail("question has options but no question text before them")
    answer = _answer_letter(row.get("answer"), options, fail)
    return MCItem(
        id=row_id, benchmark="realworldqa", question=stem, options=options, images=images,
        answer=answer, category="", meta={"instruction": instruction, "published_answer": row.get("answer")},
    )
