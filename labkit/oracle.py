"""The oracle annotator: a caption and chain of thought written from a sample's ground truth.

``labkit annotate oracle`` (see `labkit.annotate`) needs no judge. For synthetic samples
(`labkit.synth`) the caption and CoT come from the generator's own writer
(`labkit.synth.text`), rebuilt from ``meta`` and seeded from the sample id (reruns are
identical); other samples with ``candidate_defects`` get a plain template that names each
rejected candidate's defect dimensions (`labkit.data.DIMENSION_SENTENCES`).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from labkit.data import DIMENSION_SENTENCES
from labkit.metrics import LETTERS, NONE_ANSWER, canonical_answer
from labkit.synth.products import Product
from labkit.synth.scenes import Scene
from labkit.synth.text import caption, chain_of_thought


def _answer_sentence(answer: str) -> str:
    if answer == NONE_ANSWER:
        return "None of the images is acceptable, so the answer is N."
    if len(answer) == 1:
        return f"Only {answer} is acceptable, so the answer is {answer}."
    return f"The acceptable images are {', '.join(answer[:-1])} and {answer[-1]}, so the answer is {answer}."


def _synth_oracle(sample: dict, meta: dict, answer: str) -> tuple[str, str]:
    """Caption and CoT from labkit.synth's own writer, rebuilt from the sample's meta."""
    ident = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["product"].items()}
    scene_meta = dict(meta["scene"])
    scene = Scene(**{k: tuple(v) if isinstance(v, list) and k != "props" else v for k, v in scene_meta.items()})
    product = Product(**ident)
    defects = [c["defects"] for c in meta["candidates"]]
    # The generator's phrasing choices are random; seed them from the id so reruns are identical.
    rng = np.random.default_rng(int(hashlib.sha256(sample["id"].encode()).hexdigest()[:8], 16))
    return caption(product, scene, defects), chain_of_thought(product, scene, defects, answer, rng)


def oracle_annotation(sample: dict) -> tuple[str, str, str]:
    """``(caption, cot, source)`` written from the ground truth; source is ``synth`` or ``template``.

    Raises ValueError for a sample without ground truth (no answer or candidate_defects).
    """
    meta = sample.get("meta") or "{}"
    meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
    truth = meta.get("truth") or {}
    answer = sample.get("answer") or truth.get("answer")
    defects = sample.get("candidate_defects") or truth.get("candidate_defects")
    if answer is None or defects is None:
        raise ValueError(f"sample {sample.get('id')!r}: oracle CoT needs ground truth (answer and candidate_defects)")
    answer = canonical_answer(answer)
    if meta.get("generator") == "labkit.synth":
        try:
            cap, cot = _synth_oracle(sample, meta, answer)
            return cap, cot, "synth"
        except (KeyError, TypeError, ValueError):
            pass  # an older generator's meta: fall back to the template
    kinds = [c.get("kinds") for c in meta.get("candidates", [])] if isinstance(meta.get("candidates"), list) else []
    parts = ["I compare each candidate with the original product."]
    for i, (letter, tags) in enumerate(zip(LETTERS, defects)):
        if not tags:
            parts.append(f"{letter}: the product matches the original and sits plausibly in the scene; {letter} is acceptable.")
            continue
        why = "; ".join(DIMENSION_SENTENCES.get(t, t.replace("_", " ")) for t in tags)
        fine = kinds[i] if i < len(kinds) and kinds[i] else None
        detail = f" ({', '.join(k.replace('_', ' ') for k in fine)})" if fine else ""
        parts.append(f"{letter}: {why}{detail}; {letter} is not acceptable.")
    parts.append(_answer_sentence(answer))
    return "", " ".join(parts), "template"
