"""`labkit validate DATASET_DIR`: list every bad sample (id and problem); exit 1 when any is found.

Checks each row of each split: id, four candidates, split and source names, the answer and its
agreement with the per-candidate defect tags, meta JSON, every image decoded, duplicate ids
(also across splits). ``--json`` prints the list as JSON.
"""
from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("validate", help="check every sample of a dataset folder", description=__doc__)
    p.add_argument("dataset", help="dataset folder (one Parquet file per split)")
    p.add_argument("--no-images", action="store_true", help="skip decoding the images (faster)")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.data import dataset_info
    from labkit.validate import find_problems, format_problems

    problems = find_problems(args.dataset, check_images=not args.no_images)
    if args.json:
        print(json.dumps([p.as_dict() for p in problems], indent=2))
        return 1 if problems else 0
    if problems:
        print(format_problems(problems))
        bad = len({(p.split, p.id) for p in problems})
        print(f"{args.dataset}: {len(problems)} problem(s) in {bad} sample(s) or file(s)")
        return 1
    sizes = ", ".join(f"{split} {s['n']}" for split, s in dataset_info(args.dataset).items())
    print(f"{args.dataset}: all samples valid ({sizes})")
    return 0
