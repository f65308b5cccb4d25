"""Perception rows for the small screener's language side: read one image, then find each image by its label.

Stage 2 of `labkit.pretrain` (and optional extra rows of a task SFT). A language model trained
from random weights does not learn to read image tokens from the screening task alone (measured:
docs/training.md), so, as in a real VLM's alignment stage, it first learns to say what each image
shows. Every target is a short line from the synthetic generator's ground truth
(`labkit.synth.text.image_line`): "red box of Neozol" for an original, "box on the shelf, light
from the left; floating" for a candidate. Perception only: no row says whether a candidate is
acceptable or what the screening answer is.

Three kinds of row, all SFT conversations (``messages`` + ``images``) for TRL's SFTTrainer:

- ``describe_image``: one image after its label (``B: <image>``), described in one line
  (``B: floating; box on the shelf, light from the left.``): the language model learns to read
  image tokens where no other image competes;
- ``defects_image``: as ``describe_image``, but only what is wrong in the image (``B: floating.``,
  ``A: nothing wrong.``): every target word is about the defects;
- ``describe``: the five images of one sample, each after its label, described line by line:
  the screening prompt's layout;
- ``describe_mixed``: five images drawn from five different samples, each after its label, line
  by line. Siblings of one sample look alike, so in ``describe`` rows a model can lower its loss
  by describing the sample as a whole; here only finding each image by its label does.

    rows = perception_rows(ds, {"describe_image": 2000, "describe": 500, "describe_mixed": 500},
                           image_size=64, seed=0)
"""
from __future__ import annotations

import json
import random
from typing import Mapping

from labkit.conversions import sample_images, user_message
from labkit.prompts import IMAGE_CAPTION_PROMPT, IMAGE_LABELS
from labkit.synth.text import defect_line, image_line

PERCEPTION_KINDS = ("describe_image", "defects_image", "describe", "describe_mixed")
DESCRIBE_PROMPT = "Describe each image in one line: Original, A, B, C, D."
DESCRIBE_PROMPT_PAIRS = "Describe each generated image in one line: A, B, C, D."


def _meta(sample: dict) -> dict:
    meta = sample.get("meta")
    meta = json.loads(meta) if isinstance(meta, str) else dict(meta or {})
    if meta.get("generator") != "labkit.synth" or "candidates" not in meta:
        raise ValueError(f"sample {sample.get('id')!r}: perception rows need synthetic ground truth (labkit synth data)")
    return meta


def _row(images: list, labels: list[str], prompt: str, text: str) -> dict:
    return {"messages": [user_message(len(images), prompt, labels),
                         {"role": "assistant", "content": [{"type": "text", "text": text}]}],
            "images": images}


def perception_rows(ds, counts: Mapping[str, int], *, image_size: int | None = None, seed: int = 0,
                    layout: str = "separate") -> list[dict]:
    """Rows of each kind in ``counts`` ({kind: number}), shuffled, from a synthetic dataset ``ds``.

    ``describe_image`` rows cycle through the images of the samples in order (five per sample);
    ``describe`` rows through the samples; ``describe_mixed`` rows draw their five images at
    random (seeded). Decoded images are kept while the rows are built (one pass per sample).
    ``layout`` as `labkit.conversions.sample_images`: with ``pairs`` the images are the four
    original|candidate pairs, labelled A-D, and each line describes the candidate.
    """
    unknown = set(counts) - set(PERCEPTION_KINDS)
    if unknown:
        raise ValueError(f"unknown perception row kind(s) {sorted(unknown)}; expected {PERCEPTION_KINDS}")
    if len(ds) == 0:
        raise ValueError("perception rows need at least one sample")
    rng = random.Random(seed)
    labels = list(IMAGE_LABELS[layout])
    k = len(labels)
    first = 1 if layout == "pairs" else 0  # the image_line index of image 0 (pairs have no original alone)
    cache: dict[int, tuple[list, dict]] = {}

    def get(i: int):
        if i not in cache:
            sample = ds[i]
            cache[i] = (sample_images(sample, layout, image_size), _meta(sample))
        return cache[i]

    rows = []
    for n in range(counts.get("describe_image", 0)):
        images, meta = get((n // k) % len(ds))
        j = n % k
        rows.append(_row([images[j]], [labels[j]], IMAGE_CAPTION_PROMPT, f"{labels[j]}: {image_line(meta, first + j)}."))
    for n in range(counts.get("defects_image", 0)):
        images, meta = get((n // k) % len(ds))
        j = n % k
        rows.append(_row([images[j]], [labels[j]], IMAGE_CAPTION_PROMPT, f"{labels[j]}: {defect_line(meta, first + j)}."))
    prompt = DESCRIBE_PROMPT if layout == "separate" else DESCRIBE_PROMPT_PAIRS
    for n in range(counts.get("describe", 0)):
        images, meta = get(n % len(ds))
        lines = "\n".join(f"{labels[j]}: {image_line(meta, first + j)}." for j in range(k))
        rows.append(_row(images, labels, prompt, lines))
    for _ in range(counts.get("describe_mixed", 0)):
        images, lines = [], []
        for j in range(k):
            sample_images_, meta = get(rng.randrange(len(ds)))
            pick = 0 if (j == 0 and first == 0) else rng.randrange(1 - first, 5 - first)
            images.append(sample_images_[pick])
            lines.append(f"{labels[j]}: {image_line(meta, first + pick)}.")
        rows.append(_row(images, labels, prompt, "\n".join(lines)))
    rng.shuffle(rows)
    return rows
