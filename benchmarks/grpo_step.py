"""Time per GRPO step of the `small` model at G=4, split into its parts, to see the bottleneck.

    python benchmarks/grpo_step.py [--model runs/small/sft/final] [--steps 8] [--max-completion 48]

Without ``--model`` it builds the small InternVL screener (random weights: completions run
to the length limit, the worst case) and a 16-sample synthetic dataset in a temporary folder.
It runs `labkit.grpo.run_grpo` with the small GRPO recipe's settings (G=4, 2 prompts x 4
completions per step, beta 0.04 with a reference model) through a `LabGRPOTrainer` subclass
that times:

- generation: ``_generate`` (sampling G completions per prompt, KV cache, no grad);
- rewards: ``_calculate_rewards`` (the registry's reward functions);
- scoring: the rest of ``_generate_and_score_completions`` (tokenising, image processing,
  the reference model's log-probs for the KL term, advantages);
- loss + backward: ``training_step`` minus the above (policy forward, GRPO loss, backward);
- optimizer + other: the rest of the step (optimizer, scheduler, logging).

The first step is a warm-up and is left out. Prints a table of mean seconds per step and
shares of the step, measured side by side in one run.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model folder (default: build the small model with random weights)")
    p.add_argument("--data", help="dataset folder (default: 16 synthetic samples)")
    p.add_argument("--recipe", default=str(Path(__file__).resolve().parent.parent / "recipes" / "small" / "grpo.yaml"))
    p.add_argument("--steps", type=int, default=8, help="optimizer steps to time (the first is a warm-up)")
    p.add_argument("--max-completion", type=int, default=None, help="max_completion_length (default: the recipe's)")
    args = p.parse_args(argv)

    import torch
    from transformers import TrainerCallback

    from labkit.grpo import lab_trainer_class, run_grpo
    from labkit.recipes import load_recipe

    tmp = Path(tempfile.mkdtemp(prefix="grpo_step_"))
    model = args.model
    if model is None:
        from labkit.models import build_model

        model = str(build_model("internvl", "small", tmp / "model", seed=0))
    data = args.data
    if data is None:
        from labkit.synth import make_dataset

        data = str(make_dataset(tmp / "data", train=16, size=112, seed=0, workers=1))
    over = {"model": model, "data": data, "run_dir": str(tmp / "run"), "training.max_steps": args.steps,
            "training.save_strategy": "no", "training.logging_steps": 1, "training.log_completions": False,
            "training.disable_tqdm": True}
    if args.max_completion:
        over["training.max_completion_length"] = args.max_completion
    recipe = load_recipe(args.recipe, over)

    times: dict[str, list[float]] = defaultdict(list)
    current: dict[str, float] = defaultdict(float)
    base = lab_trainer_class()

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                current[name] += time.perf_counter() - t0
        return wrapper

    class TimedTrainer(base):
        def _generate(self, *a, **kw):
            return timed("generation", super()._generate)(*a, **kw)

        def _calculate_rewards(self, *a, **kw):
            return timed("rewards", super()._calculate_rewards)(*a, **kw)

        def _generate_and_score_completions(self, *a, **kw):
            return timed("generate_and_score", super()._generate_and_score_completions)(*a, **kw)

        def training_step(self, *a, **kw):
            return timed("training_step", super().training_step)(*a, **kw)

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            current.clear()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            total = time.perf_counter() - self.t0
            gen, rew = current["generation"], current["rewards"]
            scoring = current["generate_and_score"] - gen - rew
            loss = current["training_step"] - current["generate_and_score"]
            times["generation"].append(gen)
            times["rewards"].append(rew)
            times["scoring (ref log-probs, processing)"].append(scoring)
            times["loss + backward"].append(loss)
            times["optimizer + other"].append(total - current["training_step"])
            times["step"].append(total)

    t0 = time.perf_counter()
    run_grpo(recipe, trainer_cls=TimedTrainer, callbacks=[StepClock()])
    wall = time.perf_counter() - t0
    t = recipe.training
    print(f"\nGRPO step of {Path(model).name}: G={t['num_generations']}, "
          f"{t['per_device_train_batch_size']} completions/step, max_completion_length="
          f"{t['max_completion_length']}, beta={t['beta']}, torch threads={torch.get_num_threads()}, "
          f"{args.steps} steps (first left out), run wall {wall:.1f} s")
    step = times.pop("step")[1:]
    mean_step = sum(step) / len(step)
    print(f"{'part':40s} {'s/step':>8s} {'share':>7s}")
    for name, values in times.items():
        v = values[1:]
        m = sum(v) / len(v)
        print(f"{name:40s} {m:8.3f} {100 * m / mean_step:6.1f}%")
    print(f"{'total':40s} {mean_step:8.3f} {100.0:6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
