"""`labkit demo --out runs/demo`: the lab's main job in small mode on CPU.

Synthesize data, build the small model, CoT SFT, mine hard cases, GRPO / DPA-GRPO / HCM-GRPO,
evaluate every arm the same way (``--all-arms``: the rest of Tables 4 and 7 too); writes ``OUT/results.json`` and ``OUT/report.html`` and prints
the results table (see `labkit.pipeline`). Finished arms are skipped on a rerun.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("demo", help="run the whole lab in small mode (CPU) and write a report", description=__doc__)
    p.add_argument("--out", default="runs/demo", help="run folder (results.json, report.html)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, models and training")
    p.add_argument("--all-arms", action="store_true",
                   help="every arm of Tables 4, 6, 7 (about 3x longer); default: the core arms (pretrained base, "
                        "SFT, mining, GRPO, DPA-GRPO, HCM-GRPO, CNN baseline)")
    p.add_argument("--arms", default=None, help="comma-separated arms to run (their dependencies are added); default: the core arms")
    p.add_argument("--quick", action="store_true", help="tiny model, a handful of samples and steps per arm (smoke test, seconds per arm)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.pipeline import run_demo

    if args.arms:
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        run_demo(args.out, seed=args.seed, arms=arms, all_arms=False, quick=args.quick)
    else:
        run_demo(args.out, seed=args.seed, all_arms=args.all_arms, quick=args.quick)
    return 0
