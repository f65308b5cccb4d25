"""`labkit sft --recipe R [--run-dir D] [--set key=value ...] [--resume]`: SFT cold start from a recipe.

Trains with TRL's SFTTrainer (see `labkit.sft`) and prints the final model folder.
``--set`` overrides recipe keys (dotted for nested ones: ``training.learning_rate=1e-4``,
``freeze.vision=false``, ``limit=64``); values are read as YAML. ``--run-dir`` sets the
recipe's ``run_dir`` (what ``{run_dir}`` in model/data/output_dir expands to).
"""
from __future__ import annotations


def add_recipe_arguments(p) -> None:
    """The arguments shared by `labkit sft` and `labkit grpo`."""
    p.add_argument("--recipe", required=True, help="recipe YAML (e.g. recipes/small/sft.yaml)")
    p.add_argument("--run-dir", help="run folder that {run_dir} expands to (overrides the recipe's run_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, dotted for nested keys (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint-* in the output folder")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def recipe_from_args(args, stage: str):
    """Load the recipe named on the command line with its overrides; check its stage."""
    from labkit.recipes import RecipeError, load_recipe, parse_overrides

    overrides = parse_overrides(args.set)
    if args.run_dir:
        overrides["run_dir"] = args.run_dir
    if args.resume:
        overrides["resume"] = True
    recipe = load_recipe(args.recipe, overrides)
    if recipe.stage != stage:
        raise RecipeError(f"{args.recipe}: stage is {recipe.stage!r}; use `labkit {recipe.stage}` for it")
    return recipe


def register(sub):
    p = sub.add_parser("sft", help="supervised fine-tuning (cold start) from a recipe", description=__doc__)
    add_recipe_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    recipe = recipe_from_args(args, "sft")
    from labkit.stages import run_stage  # here, not at the top: the trainers' modules slow the CLI's start

    final = run_stage(recipe)
    print(f"sft ({recipe.arm}): final model in {final}")
    return 0
