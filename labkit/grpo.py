"""GRPO and DPA-GRPO with TRL's `GRPOTrainer` (the paper's stage 2).

    labkit grpo --recipe recipes/small/grpo.yaml      # format + accuracy rewards
    labkit grpo --recipe recipes/small/dpa-grpo.yaml  # format + dpa (partial credit)

or from Python::

    from labkit.recipes import load_recipe
    from labkit.grpo import run_grpo
    final = run_grpo(load_recipe("recipes/small/dpa-grpo.yaml", {"run_dir": "runs/demo"}))

Rewards come from `labkit.rewards.REWARDS` by name with the recipe's weights; TRL logs each
one's mean per step as ``rewards/<name>/mean`` (the names are the recipe's: ``format``,
``accuracy``, ``dpa``). Every GRPO setting that matters is in the recipe's ``training`` (TRL's
defaults differ from the paper: see ``recipes/paper``). The run folder gets the TRL
checkpoints, ``completions/*.parquet`` (``log_completions``), ``train_log.jsonl``,
``rewards.json`` and ``reward_curves.html`` (plotly), and ``final/`` (model + processor).

Hooks for hard-case mining (`labkit.hcm`): `run_grpo` takes a ``train_sampler`` (a
`torch.utils.data.Sampler`, or a callable ``(trainer, dataset) -> Sampler``) that replaces
TRL's `RepeatSampler` through `LabGRPOTrainer._get_train_sampler`, a ``trainer_cls`` (a
subclass of `LabGRPOTrainer`, e.g. with dynamic sampling) and extra ``callbacks``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from labkit.conversions import convert
from labkit.data import load_training_split
from labkit.mc.data import is_mc_dataset
from labkit.models import load
from labkit.rewards import get_rewards
from labkit.training import (
    apply_freeze, apply_lora, make_log_callback, read_log, resume_from, save_final, set_seed,
    training_args,
)


def __getattr__(name):
    # `LabGRPOTrainer` is built on first access so importing this module stays light (no trl import).
    if name == "LabGRPOTrainer":
        return lab_trainer_class()
    raise AttributeError(name)


def lab_trainer_class():
    """`LabGRPOTrainer` (built once, on first use)."""
    if "LabGRPOTrainer" not in globals():
        globals()["LabGRPOTrainer"] = _make_lab_trainer()
    return globals()["LabGRPOTrainer"]


def _make_lab_trainer():
    from trl import GRPOTrainer

    class LabGRPOTrainer(GRPOTrainer):
        """`trl.GRPOTrainer` with a replaceable train sampler.

        ``train_sampler``: a Sampler, or a callable ``(trainer, dataset) -> Sampler``. It must keep
        TRL's contract: each index repeated ``num_generations`` times in a row, each chunk of
        ``generation_batch_size // num_generations`` indices repeated
        ``num_iterations * steps_per_generation`` times, and a constant length per epoch. The
        trainer calls its ``set_epoch(epoch)`` (if any) at the start of every epoch.
        """

        def __init__(self, *args, train_sampler=None, **kwargs):
            self._lab_train_sampler = train_sampler
            super().__init__(*args, **kwargs)

        def _get_train_sampler(self, dataset=None):
            sampler = self._lab_train_sampler
            if sampler is None:
                return super()._get_train_sampler(dataset)
            if callable(sampler) and not hasattr(sampler, "__iter__"):
                sampler = sampler(self, dataset if dataset is not None else self.train_dataset)
            return sampler

    return LabGRPOTrainer


def named_rewards(rewards: dict[str, float]):
    """Reward functions renamed to their recipe names (TRL logs ``rewards/<name>/mean``) and weights."""

    funcs, weights = get_rewards(rewards)
    named = []
    for name, func in zip(rewards, funcs):
        def reward(completions, _func=func, **kwargs):
            return _func(completions, **kwargs)

        reward.__name__ = name
        reward.__qualname__ = name
        reward.__doc__ = func.__doc__
        named.append(reward)
    return named, weights


def build_grpo_dataset(recipe):
    """The GRPO rows (conversational ``prompt``, ``images``, ``answer``, ``id``, ``dimension``)."""

    if is_mc_dataset(recipe.data):
        # Generalisation benchmarks (multiple choice) have their own conversion.
        from labkit.mc.tasks import build_mc_grpo_dataset

        return build_mc_grpo_dataset(recipe)

    ds = load_training_split(recipe)
    return convert(ds, "grpo", recipe.conversion.to_conversion())


def reward_history(log_rows: list[dict], names) -> dict:
    """Per logged step: each reward's mean, the total reward and KL, from train_log rows."""
    out = {"step": [], "reward": [], "kl": [], "rewards": {n: [] for n in names}}
    for row in log_rows:
        if "reward" not in row:
            continue
        out["step"].append(row["step"])
        out["reward"].append(row.get("reward"))
        out["kl"].append(row.get("kl"))
        for n in names:
            out["rewards"][n].append(row.get(f"rewards/{n}/mean"))
    return out


def write_reward_curves(output_dir, names, title: str = "") -> dict:
    """Write ``rewards.json`` and ``reward_curves.html`` (plotly) from ``train_log.jsonl``."""
    output_dir = Path(output_dir)
    hist = reward_history(read_log(output_dir / "train_log.jsonl"), names)
    (output_dir / "rewards.json").write_text(json.dumps(hist, indent=2) + "\n")
    try:
        import plotly.graph_objects as go
    except ImportError:  # plotly is a dependency; keep the JSON if it is missing anyway
        return hist
    fig = go.Figure()
    for n in names:
        fig.add_trace(go.Scatter(x=hist["step"], y=hist["rewards"][n], mode="lines+markers", name=f"{n} (mean)"))
    fig.add_trace(go.Scatter(x=hist["step"], y=hist["reward"], mode="lines", name="total (weighted)", line={"dash": "dot"}))
    if any(v is not None for v in hist["kl"]):
        fig.add_trace(go.Scatter(x=hist["step"], y=hist["kl"], mode="lines", name="KL", yaxis="y2"))
    fig.update_layout(
        title=title or f"Reward curves: {output_dir.name}",
        xaxis_title="optimizer step", yaxis_title="reward",
        yaxis2={"title": "KL", "overlaying": "y", "side": "right"},
        template="plotly_white",
    )
    fig.write_html(str(output_dir / "reward_curves.html"), include_plotlyjs="cdn")
    return hist


def run_grpo(recipe, *, train_sampler=None, trainer_cls=None, callbacks=None, resume: bool | None = None) -> Path:
    """Train a recipe of stage ``grpo``; return the ``final/`` folder (model + processor).

    ``train_sampler`` replaces TRL's RepeatSampler (see `LabGRPOTrainer`); ``trainer_cls``
    must subclass `LabGRPOTrainer`; ``callbacks`` are added to the trainer's. ``resume``
    (default: the recipe's ``resume``) continues from the last ``checkpoint-*``.
    """
    from trl import GRPOConfig

    if recipe.stage != "grpo":
        raise ValueError(f"{recipe.source or recipe.arm}: run_grpo needs stage grpo, got {recipe.stage!r}")
    base_cls = lab_trainer_class()
    trainer_cls = trainer_cls or base_cls
    if not issubclass(trainer_cls, base_cls):
        raise TypeError(f"trainer_cls must subclass labkit.grpo.LabGRPOTrainer, got {trainer_cls.__name__}")
    t0 = time.time()
    set_seed(recipe.seed)
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2, default=str) + "\n")
    dataset = build_grpo_dataset(recipe)
    funcs, weights = named_rewards(recipe.rewards)
    # float32 master weights: with `bf16: true` the trainer autocasts; bf16 weights updated by
    # AdamW lose most small updates (measured in benchmarks/gpu_smoke.py: 2-15 % of weights moved).
    model, processor = load(recipe.model, dtype="float32")
    model.train()
    model = apply_lora(model, recipe)
    freeze_info = apply_freeze(model, recipe.freeze)
    args = training_args(
        recipe, GRPOConfig,
        reward_weights=weights,
        log_completions=recipe.training.get("log_completions", True),
    )
    trainer = trainer_cls(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[make_log_callback(out / "train_log.jsonl"), *(callbacks or [])],
        train_sampler=train_sampler,
    )
    ckpt = resume_from(recipe, resume)
    trainer.train(resume_from_checkpoint=ckpt)
    hist = write_reward_curves(out, list(recipe.rewards), title=f"{recipe.arm}: reward per step")
    final = save_final(
        trainer, processor, recipe,
        extra={"freeze": freeze_info, "resumed_from": ckpt, "minutes": (time.time() - t0) / 60,
               "samples": len(dataset), "last_rewards": {n: (v[-1] if v else None) for n, v in hist["rewards"].items()}},
    )
    return final
