"""SFT cold start with TRL's `SFTTrainer`: stage 1.1 (captions + weak CoT), stage 1.2 (answer-driven CoT), direct-answer SFT.

    labkit sft --recipe recipes/small/sft.yaml [--run-dir runs/small] [--set training.num_train_epochs=2] [--resume]

or from Python::

    from labkit.recipes import load_recipe
    from labkit.sft import run_sft
    final = run_sft(load_recipe("recipes/small/sft.yaml"))

The recipe picks the split(s) and row kinds (``tasks``): ``screen`` rows are the screening
prompt with the sample's target (``<think>cot</think><answer>X</answer>`` for the CoT form,
``X`` for the direct form); unlabelled samples whose ``cot`` already holds an answer tag
(the weak CoT of the pseudo_label split) are used as they are. ``caption`` rows ask for a
description of every image (stage 1.1). The loss is on the assistant reply only
(``assistant_only_loss``; the lab's chat templates carry ``{% generation %}`` markers). The
vision tower / projector / language model are frozen as the recipe's ``freeze`` says (the
paper freezes ViT and aligner). Checkpoints, ``train_log.jsonl`` and ``final/`` (model +
processor, reloadable by `labkit.models.load`) go to the recipe's ``output_dir``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from labkit.conversions import sample_images, screening_message, to_caption_sft_row, to_sft_row
from labkit.data import DIMENSION_VERDICTS, load_training_split
from labkit.mc.data import is_mc_dataset
from labkit.metrics import LETTERS, parse_answer
from labkit.models import load
from labkit.perception import perception_rows
from labkit.prompts import screening_prompt
from labkit.training import (
    apply_freeze, apply_lora, make_log_callback, resume_from, save_final, set_seed,
    training_args,
)


def verdicts_cot(sample: dict) -> str | None:
    """A short reasoning from the defect tags: one verdict per candidate, e.g.
    ``A: ok. B: no, wrong shadow. C: ok. D: no, product changed, bad placement.``

    The yes/no word comes first, so a model decides acceptability in one token before naming
    the defect. None when the sample has no per-candidate tags. Small recipes use it
    (``cot: verdicts``) so that CPU GRPO completions are a few dozen tokens, not a few hundred.
    """

    defects = sample.get("candidate_defects")
    if not defects:
        return None
    parts = []
    for letter, tags in zip(LETTERS, defects):
        words = [DIMENSION_VERDICTS.get(t, t.replace("_", " ")) for t in dict.fromkeys(tags)]
        parts.append(f"{letter}: no, {', '.join(words)}." if words else f"{letter}: ok.")
    return " ".join(parts)


def screen_row(sample: dict, conv, cot_style: str = "sample") -> dict | None:
    """One screening SFT row, or None when the sample has nothing to teach."""

    if sample.get("answer") is not None:
        if cot_style == "verdicts" and conv.form == "cot":
            short = verdicts_cot(sample)
            if short is None:
                return None
            sample = dict(sample, cot=short)
        return to_sft_row(sample, conv)
    cot = (sample.get("cot") or "").strip()
    # Weak CoT (pseudo_label): the strong VLM's own reasoning and answer, used as written.
    if conv.form == "cot" and "<think>" in cot and parse_answer(cot) is not None:
        images = sample_images(sample, conv.layout, conv.image_size)
        return {
            "messages": [
                screening_message(conv.layout, screening_prompt(conv.form, conv.layout, conv.variant, conv.prompt)),
                {"role": "assistant", "content": [{"type": "text", "text": cot}]},
            ],
            "images": images,
        }
    return None


def build_sft_dataset(recipe):
    """The SFT rows (``messages`` + ``images``) of a recipe, as a `datasets.Dataset`."""

    if is_mc_dataset(recipe.data):
        # Generalisation benchmarks (multiple choice) have their own conversion.
        from labkit.mc.tasks import build_mc_sft_dataset

        return build_mc_sft_dataset(recipe)
    from datasets import Dataset

    conv = recipe.conversion.to_conversion()
    ds = load_training_split(recipe)
    rows, skipped = [], {"screen": 0, "caption": 0}
    if recipe.perception:
        # Perception rows (labkit.perception): read one image, find each image by its label.
        rows += perception_rows(ds, recipe.perception, image_size=conv.image_size, seed=recipe.seed,
                                layout=conv.layout)
    for sample in (ds if recipe.tasks else []):
        if "caption" in recipe.tasks:
            if sample.get("caption"):
                rows.append(to_caption_sft_row(sample, conv))
            else:
                skipped["caption"] += 1
        if "screen" in recipe.tasks:
            row = screen_row(sample, conv, recipe.cot)
            if row is None:
                skipped["screen"] += 1
            else:
                rows.append(row)
    if not rows:
        raise ValueError(
            f"{recipe.source or recipe.arm}: no SFT rows from {recipe.data} ({recipe.split}) with tasks "
            f"{recipe.tasks}: samples lack answers/weak CoT or captions"
        )
    return Dataset.from_list(rows), {"rows": len(rows), "samples": len(ds), "skipped": skipped}


def run_sft(recipe, *, resume: bool | None = None, callbacks=None) -> Path:
    """Train a recipe of stage ``sft``; return the ``final/`` folder (model + processor).

    ``resume`` (default: the recipe's ``resume``) continues from the last ``checkpoint-*``
    in the output folder. A finished run (``final/`` exists and resume is not asked) is
    trained again from scratch: the runner decides what to skip.
    """
    from trl import SFTConfig, SFTTrainer

    if recipe.stage != "sft":
        raise ValueError(f"{recipe.source or recipe.arm}: run_sft needs stage sft, got {recipe.stage!r}")
    t0 = time.time()
    set_seed(recipe.seed)
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2, default=str) + "\n")
    dataset, data_info = build_sft_dataset(recipe)
    # float32 master weights: with `bf16: true` the trainer autocasts; bf16 weights updated by
    # AdamW lose most small updates (measured in benchmarks/gpu_smoke.py: 2-15 % of weights moved).
    model, processor = load(recipe.model, dtype="float32")
    model.train()
    model = apply_lora(model, recipe)
    freeze_info = apply_freeze(model, recipe.freeze)
    # The assistant reply is the only supervised text; the lab's templates mark it.
    args = training_args(recipe, SFTConfig, assistant_only_loss=recipe.training.get("assistant_only_loss", True))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[make_log_callback(out / "train_log.jsonl"), *(callbacks or [])],
    )
    ckpt = resume_from(recipe, resume)
    trainer.train(resume_from_checkpoint=ckpt)
    final = save_final(
        trainer, processor, recipe,
        extra={"data": data_info, "freeze": freeze_info, "resumed_from": ckpt, "minutes": (time.time() - t0) / 60},
    )
    return final
