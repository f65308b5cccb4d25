"""Which trainer runs a recipe: the one place that dispatches a training stage.

    from labkit.stages import run_stage
    final_dir = run_stage(load_recipe("recipes/small/hcm-grpo.yaml"))

Stage ``sft`` runs `labkit.sft.run_sft`. Stage ``grpo`` runs `labkit.hcm.run_hcm_grpo` when
the recipe asks for hard-case mining (a non-empty ``hcm`` section) or dynamic sampling, else
plain `labkit.grpo.run_grpo` (GRPO and DPA-GRPO differ only in their rewards). `labkit sft`,
`labkit grpo` and the ablation runner (`labkit.ablate`) all train through `run_stage`.
"""
from __future__ import annotations

from pathlib import Path

from labkit.recipes import STAGES


def run_stage(recipe) -> Path:
    """Train ``recipe`` with its stage's trainer; return its ``final/`` folder.

    The trainer is looked up when the stage runs (not at import), so a patched or stand-in
    trainer module (the tests use them) is the one that runs; none of them loads torch on import."""
    if recipe.stage == "sft":
        from labkit.sft import run_sft

        return run_sft(recipe)
    if recipe.stage == "grpo":
        if recipe.hcm or recipe.dynamic_sampling:  # labkit.hcm adds the HCM sampler and/or dynamic sampling
            from labkit.hcm import run_hcm_grpo

            return run_hcm_grpo(recipe)
        from labkit.grpo import run_grpo

        return run_grpo(recipe)
    raise ValueError(f"{recipe.source or recipe.arm}: unknown stage {recipe.stage!r}; known: {', '.join(STAGES)}")
