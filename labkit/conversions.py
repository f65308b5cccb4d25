"""Samples as model inputs: image layouts, chat messages and the rows TRL trains on.

A `Conversion` says how a sample (`labkit.data`'s schema) becomes an input: the prompt form
(``cot`` / ``direct``), the image layout (``separate``: the original and A-D; ``grid``: the
original and a 2x2 grid; ``pairs``: four original|candidate images), the answer variant
(``train``: all acceptable letters; ``eval``: one) and an optional square image size.
`to_sft_row`, `to_caption_sft_row` and `to_grpo_row` build one row; `convert` maps a whole
`datasets.Dataset` (``labkit.grpo`` and ``labkit.sft`` train on the result).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from labkit.data import SampleError, open_image
from labkit.metrics import LETTERS, NONE_ANSWER, canonical_answer
from labkit.prompts import IMAGE_LABELS, caption_prompt, screening_prompt, target_text


@dataclass(frozen=True)
class Conversion:
    """How a sample becomes a model input: prompt form, image layout, answer variant."""

    form: str = "cot"          # cot | direct
    layout: str = "separate"   # separate (5 images) | grid (original + 2x2 grid) | pairs (4 original|candidate images)
    variant: str = "train"     # train (all letters) | eval (one letter)
    image_size: int | None = None  # resize every image to this square size (None: keep)
    prompt: str = "full"       # full (the paper's prompt) | short (small mode on CPU)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow
        return ImageFont.load_default()


def make_grid(candidates: list, label: bool = True) -> PILImage.Image:
    """A 2x2 grid of the candidates (A top-left, B top-right, C bottom-left, D bottom-right),
    each tile with its letter drawn in the top-left corner."""
    if len(candidates) != 4:
        raise ValueError(f"a grid needs exactly 4 candidates, got {len(candidates)}")
    imgs = [open_image(c, what=f"candidate {l}") for l, c in zip(LETTERS, candidates)]
    w, h = imgs[0].size
    imgs = [im if im.size == (w, h) else im.resize((w, h), PILImage.BICUBIC) for im in imgs]
    grid = PILImage.new("RGB", (2 * w, 2 * h), "white")
    for i, (letter, im) in enumerate(zip(LETTERS, imgs)):
        x, y = (i % 2) * w, (i // 2) * h
        grid.paste(im, (x, y))
        if label:
            draw = ImageDraw.Draw(grid)
            fs = max(8, min(w, h) // 6)
            draw.rectangle([x, y, x + fs + 4, y + fs + 4], fill="white", outline="black")
            draw.text((x + 3, y + 1), letter, fill="black", font=_font(fs))
    return grid


def sample_images(sample: dict, layout: str = "separate", image_size: int | None = None) -> list[PILImage.Image]:
    """The images a model sees for one sample, in order."""
    sid = sample.get("id", "?")
    original = open_image(sample["original"], sid, "original image")
    cands = sample["candidates"]
    if cands is None or len(cands) != 4:
        raise SampleError(sid, f"expected exactly 4 candidates (A-D), got {0 if cands is None else len(cands)}")
    cands = [open_image(c, sid, f"candidate {l}") for l, c in zip(LETTERS, cands)]
    if image_size:
        original = original.resize((image_size, image_size), PILImage.BICUBIC)
        cands = [c.resize((image_size, image_size), PILImage.BICUBIC) for c in cands]
    if layout == "separate":
        return [original] + cands
    if layout == "grid":
        grid = make_grid(cands)
        if image_size:
            grid = grid.resize((image_size, image_size), PILImage.BICUBIC)
        return [original, grid]
    if layout == "pairs":
        return [make_pair(original, c, image_size) for c in cands]
    raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(IMAGE_LABELS)}")


def make_pair(original: PILImage.Image, candidate: PILImage.Image, size: int | None = None) -> PILImage.Image:
    """The original (left half) beside a candidate (right half): one image of the ``pairs`` layout.

    Each half keeps the full height and half the width of a ``size`` square (default: the
    candidate's size), so the pair is what the model's square input sees, with no further resize.
    A ViT encodes each image on its own; in a pair it compares the candidate with the original
    itself, as a siamese classifier would, and the language model reads one verdict per image.
    """
    w, h = candidate.size if size is None else (size, size)
    half = max(1, w // 2)
    pair = PILImage.new("RGB", (2 * half, h))
    pair.paste(original.convert("RGB").resize((half, h), PILImage.BICUBIC), (0, 0))
    pair.paste(candidate.convert("RGB").resize((half, h), PILImage.BICUBIC), (half, 0))
    return pair


def user_message(n_images: int, text: str, labels: Sequence[str] | None = None) -> dict:
    """A user turn with one image placeholder per image, then the instruction.

    With ``labels`` (one per image) each image follows its label, ``Label: <image>`` on its own
    line, as in InternVL's multi-image convention; without, the images come first, unlabelled.
    """
    if labels is None:
        return {"role": "user", "content": [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]}
    if len(labels) != n_images:
        raise ValueError(f"{n_images} image(s) but {len(labels)} label(s)")
    content: list[dict] = []
    for i, label in enumerate(labels):
        content += [{"type": "text", "text": ("\n" if i else "") + f"{label}: "}, {"type": "image"}]
    content.append({"type": "text", "text": ("\n" if labels else "") + text})
    return {"role": "user", "content": content}


def screening_message(layout: str, text: str) -> dict:
    """The user turn of a screening prompt: each image after its label (`IMAGE_LABELS`), then ``text``."""
    if layout not in IMAGE_LABELS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(IMAGE_LABELS)}")
    labels = IMAGE_LABELS[layout]
    return user_message(len(labels), text, labels)


def single_answer(answer: str, sample_id: str) -> str:
    """The one letter an ``eval``-variant target names: "N", or one acceptable letter.

    The paper's evaluation prompt asks for the most aesthetic acceptable image; synthetic
    acceptable candidates are equally good, so the letter is drawn from the acceptable ones by
    a hash of the sample id (stable across runs, not always the first letter, which would teach
    a position bias).
    """
    import hashlib

    answer = canonical_answer(answer)
    if answer == NONE_ANSWER or len(answer) == 1:
        return answer
    digest = int(hashlib.sha256(str(sample_id).encode()).hexdigest(), 16)
    return answer[digest % len(answer)]


def to_sft_row(sample: dict, conv: Conversion = Conversion()) -> dict:
    """``messages`` (user prompt with image placeholders + assistant target) and ``images``.

    With ``conv.variant == "eval"`` the target names one acceptable letter (`single_answer`).
    """
    if sample.get("answer") is None:
        raise SampleError(sample.get("id"), "SFT needs a labelled sample (answer is None)")
    images = sample_images(sample, conv.layout, conv.image_size)
    prompt = screening_prompt(conv.form, conv.layout, conv.variant, conv.prompt)
    answer = canonical_answer(sample["answer"])
    if conv.variant == "eval":
        answer = single_answer(answer, sample["id"])
    target = target_text(answer, sample.get("cot"), conv.form)
    return {
        "messages": [
            screening_message(conv.layout, prompt),
            {"role": "assistant", "content": [{"type": "text", "text": target}]},
        ],
        "images": images,
    }


def to_caption_sft_row(sample: dict, conv: Conversion = Conversion()) -> dict:
    """A captioning turn (stage 1.1 of the cold start): describe each image."""
    if not sample.get("caption"):
        raise SampleError(sample.get("id"), "no caption to train on")
    images = sample_images(sample, conv.layout, conv.image_size)
    return {
        "messages": [
            screening_message(conv.layout, caption_prompt(conv.prompt)),
            {"role": "assistant", "content": [{"type": "text", "text": sample["caption"]}]},
        ],
        "images": images,
    }


def to_grpo_row(sample: dict, conv: Conversion = Conversion()) -> dict:
    """Conversational ``prompt`` + ``images`` + the ``answer`` label (and id, dimension)."""
    if sample.get("answer") is None:
        raise SampleError(sample.get("id"), "GRPO needs a labelled sample (answer is None)")
    images = sample_images(sample, conv.layout, conv.image_size)
    return {
        "prompt": [screening_message(conv.layout, screening_prompt(conv.form, conv.layout, conv.variant, conv.prompt))],
        "images": images,
        "answer": canonical_answer(sample["answer"]),
        "id": sample["id"],
        "dimension": sample.get("dimension") or "",
    }


def convert(ds, kind: str, conv: Conversion = Conversion()):
    """Map a schema Dataset to SFT (``sft``, ``caption``) or GRPO (``grpo``) rows."""
    fn = {"sft": to_sft_row, "caption": to_caption_sft_row, "grpo": to_grpo_row}.get(kind)
    if fn is None:
        raise ValueError(f"unknown conversion {kind!r}; expected sft, caption or grpo")
    return ds.map(lambda s: fn(s, conv), remove_columns=list(ds.column_names))
