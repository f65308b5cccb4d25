"""Shared pieces of the SFT and GRPO stages: freezing, LoRA, data rows, logs, resume, saving.

Used by `labkit.sft` and `labkit.grpo` (and `labkit.hcm`); not a command of its own.

- `model_parts` / `apply_freeze`: the vision tower, the projector and the language model of
  InternVL (``model.model.vision_tower``, ``model.model.multi_modal_projector``) and Qwen2.5-VL /
  Qwen2-VL (``model.model.visual`` without its ``merger``, which is the projector), frozen with
  ``requires_grad_(False)`` (TRL has no switch for this).
- `training_args`: a TRL config from a recipe, with CPU-safe defaults filled in only where the
  recipe is silent (``bf16`` off and ``use_cpu`` on without CUDA).
- `JsonlLogCallback`: appends every trainer log (loss, reward means, KL, ...) to
  ``train_log.jsonl`` in the run folder.
- `last_checkpoint`: the newest ``checkpoint-N`` folder, for resume.
- `save_final`: merges LoRA if any and saves model + processor into ``final/`` so
  `labkit.models.load` reloads it.
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from labkit.jsonl import append_rows, read_rows, write_atomic

PARTS = ("vision", "projector", "language")


def _unwrap(model):
    """The transformers model inside a peft wrapper, if any."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def part_of(name: str) -> str:
    """Which part a parameter name belongs to: vision, projector or language."""
    # Names as in InternVLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration,
    # with any peft prefix ("base_model.model.") stripped by the caller's search.
    if ".multi_modal_projector." in f".{name}" or ".visual.merger." in f".{name}":
        return "projector"
    if ".vision_tower." in f".{name}" or ".visual." in f".{name}":
        return "vision"
    return "language"


def model_parts(model) -> dict[str, dict[str, Any]]:
    """{part: {parameter name: parameter}} for the three parts of a VLM."""
    base = _unwrap(model)
    names = [n for n, _ in base.named_parameters()]
    if not any(part_of(n) == "vision" for n in names):
        raise ValueError(
            f"{type(base).__name__}: no vision tower found (expected model.vision_tower or model.visual); "
            "freezing supports InternVL and Qwen2-VL / Qwen2.5-VL"
        )
    parts: dict[str, dict[str, Any]] = {p: {} for p in PARTS}
    for name, param in base.named_parameters():
        parts[part_of(name)][name] = param
    return parts


def apply_freeze(model, freeze) -> dict[str, dict[str, int]]:
    """Freeze the parts the recipe names (``requires_grad_(False)``); return counts per part.

    ``freeze`` has boolean attributes ``vision``, ``projector``, ``language``. Parts not
    frozen are left as they are (LoRA may already have frozen base weights).
    """
    parts = model_parts(model)
    summary = {}
    for part, params in parts.items():
        if getattr(freeze, part):
            for p in params.values():
                p.requires_grad_(False)
        summary[part] = {
            "parameters": sum(p.numel() for p in params.values()),
            "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        }
    return summary


def lora_config(recipe):
    """A peft LoraConfig from the recipe (None without LoRA)."""
    if recipe.lora is None:
        return None
    from peft import LoraConfig

    kwargs = dict(recipe.lora)
    kwargs.setdefault("task_type", "CAUSAL_LM")
    try:
        return LoraConfig(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{recipe.source or recipe.arm}: bad lora settings ({exc})") from exc


def apply_lora(model, recipe):
    """Wrap the model with LoRA adapters when the recipe asks for them (before freezing)."""
    cfg = lora_config(recipe)
    if cfg is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, cfg)


def training_args(recipe, config_cls, **forced):
    """A TRL config (SFTConfig / GRPOConfig) from ``recipe.training``.

    The recipe's values win; ``output_dir``, ``seed`` and ``forced`` come from the runner.
    Without CUDA the run goes on CPU in float32 unless the recipe says otherwise.
    """
    import torch

    kwargs = dict(recipe.training)
    if not torch.cuda.is_available():
        kwargs.setdefault("use_cpu", True)
        kwargs.setdefault("bf16", False)
    kwargs.setdefault("report_to", "none")
    kwargs.update(forced)
    kwargs["output_dir"] = str(recipe.output_dir)
    kwargs["seed"] = recipe.seed
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{recipe.source or recipe.arm}: bad training settings for {config_cls.__name__}: {exc}") from exc


def last_checkpoint(output_dir) -> Path | None:
    """The ``checkpoint-N`` folder with the largest N in ``output_dir`` (None if there is none)."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for d in out.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", d.name)
        if m and d.is_dir() and (d / "trainer_state.json").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def resume_from(recipe, resume: bool | None) -> str | None:
    """The checkpoint to resume from when resume is asked (argument or recipe), else None."""
    want = recipe.resume if resume is None else resume
    if not want:
        return None
    ckpt = last_checkpoint(recipe.output_dir)
    return str(ckpt) if ckpt else None


def _clean(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def make_log_callback(path):
    """A `transformers.TrainerCallback` that appends each log dict to a JSONL file.

    Each line: ``{"step", "epoch", "time", ...logged values}``. Lines of a resumed run
    continue the same file (steps of an interrupted run past the checkpoint are dropped).
    """
    from transformers import TrainerCallback

    path = Path(path)

    class JsonlLogCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            # On resume, keep lines up to the checkpoint's step so the curve has no duplicates.
            if path.exists():
                write_atomic(path, [row for row in read_rows(path) if row.get("step", 0) <= state.global_step])

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": state.global_step, "epoch": _clean(state.epoch), "time": time.time()}
            row.update({k: _clean(v) for k, v in logs.items()})
            append_rows(path, [row])

    return JsonlLogCallback()


def read_log(path) -> list[dict]:
    """Rows of a ``train_log.jsonl`` (empty list if missing)."""
    return read_rows(path)


def save_final(trainer, processor, recipe, extra: dict | None = None) -> Path:
    """Save the trained model (LoRA merged) and processor into ``output_dir/final``."""
    final = recipe.final_dir
    final.mkdir(parents=True, exist_ok=True)
    model = trainer.model
    unwrapped = trainer.accelerator.unwrap_model(model) if hasattr(trainer, "accelerator") else model
    if hasattr(unwrapped, "merge_and_unload"):
        unwrapped = unwrapped.merge_and_unload()
    if trainer.args.should_save:
        unwrapped.save_pretrained(final, safe_serialization=True)
        processor.save_pretrained(final)
        info = {"arm": recipe.arm, "stage": recipe.stage, "recipe": recipe.to_dict(), "global_step": trainer.state.global_step}
        info.update(extra or {})
        (final / "labkit_train.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        src_info = Path(recipe.model) / "labkit_model.json"
        if src_info.exists():
            (final / "labkit_model.json").write_text(src_info.read_text())
        from labkit.model_card import write_model_card

        write_model_card(final)  # README.md in the Hub's model-card format, replacing TRL's boilerplate
    return final


def set_seed(seed: int) -> None:
    from transformers import set_seed as hf_set_seed

    hf_set_seed(seed)
