"""The demo pipeline (`make demo`): the whole lab in small mode on CPU, then a report.

    labkit demo --out runs/demo [--seed 0] [--all-arms]

Runs the arms of the `small` recipe set (``recipes/sets/small.yaml``) through the ablation
runner (`labkit.ablate`): synthesize the data -> build the small InternVL model -> evaluate the
base model -> CoT SFT -> evaluate -> mine hard cases with the SFT model -> GRPO, DPA-GRPO and
HCM-GRPO from the SFT model -> evaluate each -> ``OUT/results.json`` + ``OUT/report.html``.
By default it runs the core arms (`DEMO_ARMS`, about 20 minutes on 2 cores); ``--all-arms`` adds
the rest of Tables 4 and 7 (direct-answer base and SFT, GRPO on the base model, the four other
late-epoch compositions). It prints the results table
(`labkit.metrics.format_table`) and the report's path.

Stages skip what is already done (per-arm ``done.json`` markers), so an interrupted demo resumes;
``make clean-demo`` starts over.
"""
from __future__ import annotations

import time
from pathlib import Path

from labkit.ablate import Runner, load_recipe_set, print_table
from labkit.recipes import load_recipe

# The arms `make demo` runs by default, in the recipe set's order (dependencies are added).
DEMO_ARMS = ("base-cot", "sft", "mine", "grpo", "dpa-grpo", "hcm-grpo", "baseline-cnn")

# `--quick`: the tiny model and a handful of samples and steps per arm: every code path in
# seconds, nothing learned (for smoke tests and CI).
QUICK = {
    "synth": {"train": 16, "test": 10, "pseudo": 8, "exploration": 0, "size": 56, "workers": 1},
    "build": {"size": "tiny"},
    "evaluation": {"batch_size": 10, "max_new_tokens": 16, "limit": 10},
    "sft": {"limit": 8, "training.num_train_epochs": 1, "training.save_strategy": "no", "training.logging_steps": 1},
    "grpo": {"limit": 4, "training.num_train_epochs": 1, "training.save_strategy": "no", "training.logging_steps": 1,
             "training.max_completion_length": 16},
    "mine": {"limit": 4},
    "baseline": {"steps": 4, "batch_size": 4},
}


def make_quick(rs) -> None:
    """Shrink a loaded recipe set in place to the `QUICK` sizes."""

    if rs.data.get("synth"):
        rs.data["synth"] = {**rs.data["synth"], **QUICK["synth"]}
    if rs.base.get("pretrained"):  # quick: the tiny random model instead of the pretrained small one
        rs.base = {"dir": rs.base.get("dir", "{run_dir}/base-model"), "build": {"arch": "internvl", **QUICK["build"]}}
    elif rs.base.get("build"):
        rs.base["build"] = {**rs.base["build"], **QUICK["build"]}
    rs.evaluation = {**rs.evaluation, **QUICK["evaluation"]}
    for arm in rs.arms:
        if arm.kind == "mine":
            arm.limit = QUICK["mine"]["limit"]
        elif arm.kind == "baseline":
            arm.set = {**arm.set, **QUICK["baseline"]}
        elif arm.recipe:
            stage = load_recipe(arm.recipe, check_training=False).stage
            arm.set = {**arm.set, **QUICK[stage]}


def run_demo(out: str | Path = "runs/demo", seed: int = 0, *, arms=DEMO_ARMS, recipe_set: str = "small",
             all_arms: bool = False, progress: bool = True, quick: bool = False) -> dict:
    """Run the demo arms into ``out``; print the table and the report path; return results.json's dict.

    The recipe set and its recipes are found from the package (`labkit.recipes.resolve_recipe_path`),
    so the demo runs from any working directory; every arm's recipe is checked before anything runs.
    ``quick`` shrinks every arm (`QUICK`).
    """

    out = Path(out)
    rs = load_recipe_set(recipe_set)
    if quick:
        make_quick(rs)
    t0 = time.time()
    runner = Runner(rs, out, seed=seed, progress=progress)
    results = runner.run(None if all_arms else list(arms))
    print()
    print(f"labkit demo: recipe set {rs.name!r}, seed {seed}, {(time.time() - t0) / 60:.1f} minutes this run "
          f"({results.get('minutes', 0):.1f} minutes of arm time in total)")
    print_table(results)
    print(f"\nresults: {out / 'results.json'}")
    print(f"report:  {out / 'report.html'}")
    return results
