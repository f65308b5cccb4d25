"""Benchmark: what the CNN baseline (`labkit.baseline`) reaches for its CPU budget, per input size and design.

For each input size the split is decoded once; then each variant trains for ``--steps`` steps on
one thread, the decision rule is chosen on the training split, and the test split is scored. One
row per variant: test score and random baseline, per-candidate AUC (overall, first candidate, per
dimension), the rule and its threshold, and the training cost in CPU seconds of this process
(``cpu_s``: what the work costs, even when other jobs share the machine) and in wall seconds.
Loss and held-out AUC are also printed every ``--eval-every`` steps, so learning over time is
visible (accuracy can sit at the majority class while the AUC already rises).

Run: ``python benchmarks/baseline_budget.py --data runs/bench/data --sizes 64,112 --steps 700
[--variants context,no-context] [--seed 0]`` (data: e.g. ``labkit synth --out runs/bench/data
--train 2700 --test 400 --size 224 --seed 0``).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

from labkit.baseline import BaselineConfig, choose_rule, load_arrays, predict_ok, train_model
from labkit.metrics import candidate_auc, score

VARIANTS = {
    "context": {},
    "no-context": {"context": False},
    "no-aux": {"aux_dimensions": False},
    "wide": {"width": 24},
}


def run_variant(cfg: BaselineConfig, train: dict, test: dict, eval_every: int) -> dict:
    import torch

    from labkit.baseline import answers_for

    torch.set_num_threads(cfg.threads or 1)
    curve = []
    spent = [0.0]  # CPU seconds spent on the held-out checks, left out of the training cost

    def check(step, model):
        t = time.process_time()
        p = predict_ok(model, test["X"], cfg.eval_batch_size)
        auc = candidate_auc(p.tolist(), test["defects"])["overall"]
        top1 = score(answers_for(p, "top1", 0.0), test["answers"])["overall"]  # no threshold: always a letter
        curve.append((step, auc, top1))
        print(f"    step {step:5d}: held-out AUC {auc:.3f}, top-1 letter score {top1:.1f}", flush=True)
        spent[0] += time.process_time() - t

    cpu0, t0 = time.process_time(), time.time()
    model, log = train_model(cfg, train["X"], train["Y"], train["ok"], progress=False,
                             callback=check if eval_every else None, callback_every=eval_every or 1)
    cpu_s, wall_s = time.process_time() - cpu0 - spent[0], time.time() - t0
    p_train = predict_ok(model, train["X"], cfg.eval_batch_size)
    decision = choose_rule(p_train, train["ok"], cfg.rule, cfg.threshold)
    p_test = predict_ok(model, test["X"], cfg.eval_batch_size)
    res = score(answers_for(p_test, decision["rule"], decision["threshold"]), test["answers"], test["dimensions"])
    res["auc"] = candidate_auc(p_test.tolist(), test["defects"])
    res.update(decision=decision, cpu_s=cpu_s, wall_s=wall_s, steps=log["steps"], epochs=log["epochs"],
               params=log["params"], loss_last=log["loss_last"], curve=curve)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset folder with train and test splits")
    ap.add_argument("--sizes", default="64,112", help="input sizes in px, comma-separated")
    ap.add_argument("--variants", default="context", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--steps", type=int, default=700, help="optimizer steps per variant")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="only the first N training samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=0, help="print the held-out AUC every N steps (0 = off)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        t = time.process_time()
        train = load_arrays(args.data, "train", size, args.limit, progress=False)
        test = load_arrays(args.data, "test", size, progress=False)
        print(f"{size} px: {len(train['ids'])} train / {len(test['ids'])} test samples decoded in "
              f"{time.process_time() - t:.0f} CPU-s", flush=True)
        for name in args.variants.split(","):
            cfg = replace(BaselineConfig(), image_size=size, steps=args.steps, batch_size=args.batch_size,
                          max_train_s=None, seed=args.seed, **VARIANTS[name])
            r = run_variant(cfg, train, test, args.eval_every)
            dims = " ".join(f"{d.split('_')[0][:5]} {v:.2f}" for d, v in r["auc"]["per_dimension"].items())
            line = (f"{size:4d} px {name:11s} score {r['overall']:5.1f} (random {r['random_baseline']:.1f}) "
                    f"AUC {r['auc']['overall']:.3f} first {r['auc']['first']:.3f} [{dims}] "
                    f"rule {r['decision']['rule']}@{r['decision']['threshold']:.2f} (train {r['decision']['train_score']:.1f}) "
                    f"{r['steps']} steps {r['epochs']:.1f} ep {r['params'] / 1e6:.2f}M params "
                    f"train {r['cpu_s']:.0f} CPU-s / {r['wall_s']:.0f} wall-s")
            print(line, flush=True)
            rows.append(line)
    print("\n".join(["", "summary (torch threads 1, seed %d):" % args.seed, *rows]))


if __name__ == "__main__":
    main()
