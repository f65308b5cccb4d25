"""`labkit grpo --recipe R [--run-dir D] [--set key=value ...] [--resume]`: GRPO / DPA-GRPO / HCM-GRPO from a recipe.

Trains with TRL's GRPOTrainer (see `labkit.grpo`); a recipe with a non-empty ``hcm``
section runs hard-case mining (`labkit.hcm.run_hcm_grpo`; the dispatch is `labkit.stages.run_stage`). Prints the final model folder;
the run folder also holds train_log.jsonl, rewards.json, reward_curves.html and the
logged completions. Overrides work as in `labkit sft`.
"""
from __future__ import annotations

from labkit.cli.sft import add_recipe_arguments, recipe_from_args


def register(sub):
    p = sub.add_parser("grpo", help="GRPO / DPA-GRPO / HCM-GRPO from a recipe", description=__doc__)
    add_recipe_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    recipe = recipe_from_args(args, "grpo")
    from labkit.stages import run_stage  # here, not at the top: the trainers' modules slow the CLI's start

    final = run_stage(recipe)
    print(f"grpo ({recipe.arm}): final model in {final}")
    return 0
