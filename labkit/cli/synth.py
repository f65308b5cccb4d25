"""`labkit synth --out DIR --train N --test N --pseudo N --exploration N --size 224 --seed 0`:
draw a procedural screening dataset (exact labels, defects of all four dimensions) on all cores."""
from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("synth", help="draw a procedural screening dataset with exact labels", description=__doc__)
    p.add_argument("--out", required=True, help="dataset folder to write (splits already there are replaced)")
    p.add_argument("--train", type=int, default=0, help="labelled training samples (with oracle CoT)")
    p.add_argument("--test", type=int, default=0, help="labelled test samples (answer + dimension)")
    p.add_argument("--pseudo", type=int, default=0, help="pseudo_label samples (captions + CoT)")
    p.add_argument("--exploration", type=int, default=0, help="unlabelled samples (truth kept in meta)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--originals", default=None, metavar="DIR",
                   help="folder of real product photos on a plain background to use as originals")
    p.add_argument("--severity", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="range of defect strength, 1 = obvious, 0 = barely visible (default 0.15 1.0)")
    p.add_argument("--dimension-mix", default=None, metavar="JSON",
                   help='share per focus dimension, e.g. \'{"appearance_deformation": 0.4, "normal": 0.1, ...}\'')
    p.add_argument("--acceptable-counts", type=float, nargs=4, default=None, metavar=("P0", "P1", "P2", "P3"),
                   help="weights of 0..3 acceptable candidates in non-normal samples (answer-length distribution)")
    p.add_argument("--kind-weights", default=None, metavar="JSON", help='finer defect weights, e.g. \'{"floating": 2}\'')
    p.add_argument("--cot-style", choices=("full", "short"), default="full",
                   help="oracle CoT: full sentences, or one short verdict per image (small models)")
    p.add_argument("--pseudo-accuracy", type=float, default=1.0, metavar="P",
                   help="share of pseudo_label samples annotated correctly (<1 imitates a weak annotator)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.data import dataset_info
    from labkit.synth import make_dataset

    options = {}
    if args.severity:
        options["severity"] = tuple(args.severity)
    if args.dimension_mix:
        options["dimension_mix"] = json.loads(args.dimension_mix)
    if args.acceptable_counts:
        options["acceptable_counts"] = tuple(args.acceptable_counts)
    if args.kind_weights:
        options["kind_weights"] = json.loads(args.kind_weights)
    options["cot_style"] = args.cot_style
    options["pseudo_label_accuracy"] = args.pseudo_accuracy
    if args.train + args.test + args.pseudo + args.exploration == 0:
        raise ValueError("nothing to draw: give at least one of --train, --test, --pseudo, --exploration")
    out = make_dataset(args.out, train=args.train, test=args.test, pseudo=args.pseudo, exploration=args.exploration,
                       size=args.size, seed=args.seed, workers=args.workers, originals_dir=args.originals,
                       progress=not args.no_progress, **options)
    for split, s in dataset_info(out).items():
        mean = f", mean answer length {s['mean_answer_length']:.3f}" if s["mean_answer_length"] is not None else ""
        print(f"{split}: {s['n']} samples{mean}")
    print(f"wrote {out}")
    return 0
