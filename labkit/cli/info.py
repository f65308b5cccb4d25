"""`labkit info DATASET_DIR`: split sizes, mean answer length, dimension counts, random baseline.

Every sample is checked first (`labkit.validate`); with invalid samples it lists them and
refuses (exit 1) unless ``--force``.
"""
from __future__ import annotations

import json
import sys


def register(sub):
    p = sub.add_parser("info", help="summarise a dataset folder", description=__doc__)
    p.add_argument("dataset", help="dataset folder (one Parquet file per split)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--force", action="store_true", help="summarise even when some samples are invalid (with a warning)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.data import dataset_info
    from labkit.mc.data import is_mc_dataset, print_mc_info
    from labkit.validate import find_problems, format_problems

    if is_mc_dataset(args.dataset):  # a generalisation benchmark (labkit mc-prepare) has its own summary
        return print_mc_info(args.dataset, as_json=args.json)
    # Invalid samples would be summarised silently (or crash the summary): check every one first.
    problems = find_problems(args.dataset)
    if problems:
        print(format_problems(problems, limit=10), file=sys.stderr)
        if not args.force:
            print(f"labkit info: {len(problems)} invalid sample(s) in {args.dataset}; not summarising "
                  "(fix them, or --force to summarise anyway)", file=sys.stderr)
            return 1
        print(f"labkit info: warning: {len(problems)} invalid sample(s); the summary includes them", file=sys.stderr)
    info = dataset_info(args.dataset)
    if not info:
        raise FileNotFoundError(f"no dataset splits (*.parquet) in {args.dataset!r}")
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"dataset {args.dataset}")
    print(f"{'split':<14}{'n':>7}{'labelled':>10}{'mean len':>10}{'random %':>10}  dimensions")
    for split, s in info.items():
        mean = f"{s['mean_answer_length']:.4f}" if s["mean_answer_length"] is not None else "-"
        rnd = f"{s['random_baseline']:.2f}" if s["random_baseline"] is not None else "-"
        dims = ", ".join(f"{k}={v}" for k, v in s["dimensions"].items())
        print(f"{split:<14}{s['n']:>7}{s['labelled']:>10}{mean:>10}{rnd:>10}  {dims}")
    return 0
