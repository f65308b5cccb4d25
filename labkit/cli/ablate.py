"""`labkit ablate --recipe-set small --out runs/NAME`: the arms of the paper's Tables 4, 6 and 7.

Runs every arm of ``recipes/sets/NAME.yaml`` (or a YAML path) in order, evaluates each with the
same evaluator, and writes ``OUT/results.json`` and ``OUT/report.html``. Finished arms (with
``OUT/ARM/done.json``) are not re-run; an interrupted arm resumes from its last checkpoint.

``--seeds 0,1,2`` runs the arms once per seed into ``OUT/seed-S`` (one shared dataset in
``OUT/data``) and writes the means, standard deviations and per-seed numbers to
``OUT/results.json`` and a report with error bars (`labkit.seeds`).
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("ablate", help="run the arms of a recipe set and write results.json + report.html", description=__doc__)
    p.add_argument("--recipe-set", default="small", help="recipe set name (recipes/sets/NAME.yaml) or a YAML path")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--arms", default=None, help="comma-separated arms to run (their dependencies are added)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, models and training")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2: run every arm once per seed into "
                   "OUT/seed-S and report mean and std (overrides --seed)")
    p.add_argument("--list", action="store_true", help="list the arms and exit")
    p.add_argument("--report-only", action="store_true", help="rewrite report.html from results.json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.ablate import Runner, load_recipe_set, print_table

    rs = load_recipe_set(args.recipe_set)
    if args.list:
        for a in rs.arms:
            deps = f" (needs {', '.join(a.needs)})" if a.needs else ""
            print(f"{a.name:24s} {a.kind:6s} tables {a.tables}{deps}  {a.description}")
        return 0
    names = [n.strip() for n in args.arms.split(",")] if args.arms else None
    if args.seeds:
        from labkit.seeds import parse_seeds, run_seeds, seeds_table

        results = run_seeds(rs, args.out, parse_seeds(args.seeds), arms=names, report_only=args.report_only)
        print()
        seeds_table(results)
        print(f"\nreport: {args.out}/report.html")
        return 0
    runner = Runner(rs, args.out, seed=args.seed)
    if args.report_only:
        import json

        results = json.loads((runner.out / "results.json").read_text())
        runner.write(results)
    else:
        results = runner.run(names)
    print()
    print_table(results)
    print(f"\nreport: {runner.out / 'report.html'}")
    return 0
