"""`labkit baseline --data DIR --out RUN`: the discriminative CNN baseline (`labkit.baseline`).

Trains a small CNN over (original, candidate, siblings) on the training split's per-candidate
labels within a fixed CPU budget, chooses its decision rule and threshold on the training split,
and evaluates it on the test split: ``RUN/model.safetensors``, ``RUN/baseline.json`` and
``RUN/eval/predictions.jsonl`` + ``results.json`` (the evaluator's files, plus the per-candidate AUC).
Settings come from a recipe YAML (default recipes/baseline/cnn-small.yaml) and ``--set key=value``.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "baseline" / "cnn-small.yaml"


def register(sub):
    p = sub.add_parser("baseline", help="train and evaluate the discriminative CNN baseline", description=__doc__)
    p.add_argument("--data", required=True, help="dataset folder with a labelled train split and the evaluation split")
    p.add_argument("--out", required=True, help="run folder (weights, predictions, results)")
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="baseline recipe YAML")
    p.add_argument("--split", default="test", help="split to evaluate on")
    p.add_argument("--limit", type=int, default=None, help="only the first N samples of the evaluation split")
    p.add_argument("--seed", type=int, default=None, help="seed (overrides the recipe's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set image_size=112 --set steps=2000 (YAML values)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def parse_sets(items: list[str]) -> dict:
    """``["image_size=112", "max_train_s=null"]`` -> {"image_size": 112, "max_train_s": None} (YAML values)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args) -> int:
    from labkit.baseline import load_config, train_baseline
    from labkit.metrics import format_table

    overrides = parse_sets(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(args.recipe, overrides)
    res = train_baseline(args.data, args.out, cfg, split=args.split, limit=args.limit, progress=not args.no_progress)
    print(format_table({"baseline-cnn": res}))
    auc = res["auc"]
    dims = "  ".join(f"{d.split('_')[0]} {v:.3f}" for d, v in auc["per_dimension"].items())
    print(f"\nper-candidate AUC {auc['overall']:.3f} (first candidate {auc['first']:.3f}; {dims})")
    print(f"rule {res['rule']} at threshold {res['threshold']:.3f} (training score {res['train_score']:.1f}, training AUC "
          f"{res['train_auc']:.3f}); {res['train']['steps']} steps = {res['train']['epochs']:.1f} epochs, "
          f"{res['params'] / 1e6:.2f}M parameters; train {res['train_s']:.0f} s, load {res['load_s']:.0f} s, "
          f"total {res['wall_s']:.0f} s")
    print(f"wrote {Path(args.out) / 'eval' / 'predictions.jsonl'}")
    return 0
