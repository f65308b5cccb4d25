"""`labkit demo --out runs/demo`: the lab's main job in small mode on CPU.

Runs the pipeline stages that exist (see `labkit.pipeline`), writes
``OUT/results.json`` and ``OUT/report.html`` and prints the results table.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("demo", help="run the whole lab in small mode (CPU) and write a report", description=__doc__)
    p.add_argument("--out", default="runs/demo", help="run folder (results.json, report.html)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, models and training")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.pipeline import run_demo

    run_demo(args.out, seed=args.seed)
    return 0
