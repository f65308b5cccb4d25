"""The cost of learning: per-candidate AUC and score of the small SFT stage against wall time.

    python benchmarks/sft_learning.py --run runs/demo [--every 40] [--limit 200] [--out runs/sft-learning]

Trains the `small` recipe set's CoT SFT arm (``recipes/small/sft.yaml``) from the run's base
model (``RUN/base-model``, the lab's pretrained small VLM) on the run's data (``RUN/data``), and
every ``--every`` optimizer steps evaluates the model in memory on the first ``--limit`` test
samples with `labkit.evaluate.evaluate`: the score (the paper's metric), the per-candidate AUC of
the model's own verdict probabilities, the first candidate's AUC, and the image-swap control
(each sample's images replaced by the next sample's: what is left of the AUC without vision).
Prints one line per evaluation and a table at the end, and writes ``OUT/learning.json``.

Evaluation time is measured and left out of the training wall time. A learning target lives here
and in the demo's report, never in a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a demo run folder with data/ and base-model/ (labkit demo)")
    p.add_argument("--recipe", default=None, help="SFT recipe (default: the small set's sft recipe)")
    p.add_argument("--every", type=int, default=40, help="evaluate every N optimizer steps")
    p.add_argument("--limit", type=int, default=200, help="test samples per evaluation")
    p.add_argument("--out", default="runs/sft-learning", help="output folder")
    args = p.parse_args(argv)

    # torch / transformers are heavy: imported here, after argument parsing.
    from transformers import TrainerCallback

    from labkit.evaluate import evaluate
    import labkit
    from labkit.recipes import load_recipe
    from labkit.sft import run_sft

    run, out = Path(args.run), Path(args.out)
    default = Path(labkit.__file__).resolve().parent.parent / "recipes/small/sft.yaml"
    recipe = load_recipe(args.recipe or default,
                         overrides={"model": str(run / "base-model"), "data": str(run / "data"),
                                    "output_dir": str(out / "sft"), "training.save_strategy": "no"})
    conv = {k: getattr(recipe.conversion, k) for k in ("form", "layout", "variant", "image_size", "prompt")}
    points: list[dict] = []
    clock = {"train": 0.0, "mark": time.time()}

    def measure(model, processor, step: int) -> None:
        clock["train"] += time.time() - clock["mark"]
        model.eval()
        row = {"step": step, "train_seconds": round(clock["train"], 1)}
        for swap in (False, True):
            res = evaluate((model, processor), run / "data", "test", limit=args.limit, swap_images=swap,
                           batch_size=25, max_new_tokens=48, progress=False, **conv)
            auc = res.get("auc") or {}
            key = "swap_" if swap else ""
            row[key + "auc"] = auc.get("overall")
            row[key + "first_auc"] = auc.get("first")
            if not swap:
                row["score"] = res["overall"]
                row["random"] = res["random_baseline"]
        model.train()
        points.append(row)
        print(json.dumps(row), flush=True)
        clock["mark"] = time.time()

    class Every(TrainerCallback):
        def __init__(self):
            self.processor = None

        def on_train_begin(self, args_, state, control, model=None, processing_class=None, **kw):
            self.processor = processing_class
            measure(model, processing_class, 0)

        def on_step_end(self, args_, state, control, model=None, **kw):
            if state.global_step % args.every == 0:
                measure(model, self.processor, state.global_step)

        def on_train_end(self, args_, state, control, model=None, **kw):
            if state.global_step % args.every:
                measure(model, self.processor, state.global_step)

    run_sft(recipe, callbacks=[Every()])
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps({"recipe": recipe.source, "run": str(run), "limit": args.limit,
                                                   "points": points}, indent=2) + "\n")
    print(f"\n{'step':>5} {'train s':>8} {'score':>6} {'random':>6} {'AUC':>6} {'swap':>6} {'first':>6}")
    for r in points:
        print(f"{r['step']:>5} {r['train_seconds']:>8.0f} {r['score']:>6.1f} {r['random']:>6.1f} "
              f"{(r['auc'] or float('nan')):>6.3f} {(r['swap_auc'] or float('nan')):>6.3f} {(r['first_auc'] or float('nan')):>6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
