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

# The arms `make demo` runs by default, in the recipe set's order (dependencies are added).
DEMO_ARMS = ("base-cot", "sft", "mine", "grpo", "dpa-grpo", "hcm-grpo")


def run_demo(out: str | Path = "runs/demo", seed: int = 0, *, arms=DEMO_ARMS, recipe_set: str = "small",
             all_arms: bool = False, progress: bool = True) -> dict:
    """Run the demo arms into ``out``; print the table and the report path; return results.json's dict."""
    from labkit.ablate import Runner, load_recipe_set, print_table

    out = Path(out)
    rs = load_recipe_set(recipe_set)
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
