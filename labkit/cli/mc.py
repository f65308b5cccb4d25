"""`labkit mc-prepare`, `labkit mc-synth`, `labkit mc-evaluate`: the generalisation benchmarks.

    labkit mc-prepare --benchmark blink|muirbench|realworldqa --source HUB_ID_OR_DIR --out DIR [--seed 0]
    labkit mc-synth --benchmark muirbench --out DIR [--n 100]     (offline stand-in, published schema)
    labkit mc-evaluate --model MODEL --data DIR [--split test] [--out RUN_DIR]
    labkit mc-evaluate --predictions RUN_DIR/predictions.jsonl

``mc-prepare`` reads the published schema (a hub id needs network; a folder of the
published Parquet files works offline) and writes the seeded 1:1 train/test split
(``--protocol all-test``: everything as test). ``mc-evaluate`` prints micro accuracy,
the macro average over categories (BLINK subtasks, MuirBench tasks) and per category.
"""
from __future__ import annotations

from pathlib import Path

from labkit.jsonl import read_rows


def register(sub):
    from labkit.mc.sources import BENCHMARKS, PROTOCOLS

    p = sub.add_parser("mc-prepare", help="load BLINK / MuirBench / RealWorldQA as published; write the 1:1 split",
                       description=__doc__)
    p.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    p.add_argument("--source", help="hub id (default: the benchmark's) or a local folder/file of the published Parquet")
    p.add_argument("--out", required=True, help="folder to write train.parquet, test.parquet, dataset.json")
    p.add_argument("--seed", type=int, default=0, help="seed of the 1:1 split (default 0)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="split",
                   help="split: seeded 1:1 train/test (the paper's); all-test: the whole labelled split as test")
    p.add_argument("--split", help="published split to read (default: BLINK val, others test)")
    p.add_argument("--configs", help="BLINK subtasks, comma-separated (default: all 14)")
    p.add_argument("--limit", type=int, help="read at most this many items (small mode)")
    p.add_argument("--no-check-images", action="store_true", help="do not decode every image while loading")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run_prepare)

    y = sub.add_parser("mc-synth", help="write a synthetic stand-in of a benchmark in its published schema (offline demos)",
                       description=__doc__)
    y.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    y.add_argument("--out", required=True, help="folder for the Parquet files, in the hub's layout")
    y.add_argument("--n", type=int, default=100, help="rows (BLINK: val rows over two subtasks)")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--size", type=int, default=64, help="image side in pixels")
    y.add_argument("--debug", action="store_true", help="show tracebacks")
    y.set_defaults(func=run_synth)

    e = sub.add_parser("mc-evaluate", help="evaluate a model on a prepared MC split (micro + macro accuracy)",
                       description=__doc__)
    e.add_argument("--model", help="model folder or hub alias")
    e.add_argument("--data", help="prepared MC folder (labkit mc-prepare)")
    e.add_argument("--split", default="test")
    e.add_argument("--predictions", help="score an existing predictions.jsonl instead of generating")
    e.add_argument("--out", help="run folder: predictions.jsonl, results.json, run.json (resumable)")
    e.add_argument("--form", choices=("cot", "direct"), default="cot")
    e.add_argument("--image-size", type=int, help="resize images to this square size")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-new-tokens", type=int, default=256)
    e.add_argument("--limit", type=int, help="evaluate the first N items only")
    e.add_argument("--debug", action="store_true", help="show tracebacks")
    e.set_defaults(func=run_evaluate)


def run_prepare(args) -> int:
    from labkit.mc.data import prepare

    configs = [c.strip() for c in args.configs.split(",") if c.strip()] if args.configs else None
    manifest = prepare(args.benchmark, args.source, args.out, seed=args.seed, protocol=args.protocol, split=args.split,
                       configs=configs, limit=args.limit, check_images=not args.no_check_images, progress=True)
    sizes = ", ".join(f"{k} {v}" for k, v in manifest["splits"].items())
    print(f"{args.benchmark} ({manifest['published_split']} from {manifest['source']}): {sizes}; "
          f"protocol {manifest['protocol']}, seed {manifest['seed']}")
    if manifest["skipped"]:
        print(f"skipped {manifest['skipped']} row(s) that are not single-letter MC items, e.g. "
              f"{manifest['skipped_rows'][0]} (list in {Path(args.out) / 'dataset.json'})")
    print(f"wrote {args.out}")
    return 0


def run_synth(args) -> int:
    from labkit.mc.synth import write_synthetic

    root = write_synthetic(args.benchmark, args.out, n=args.n, seed=args.seed, size=args.size)
    print(f"wrote a synthetic {args.benchmark} ({args.n} rows, published layout) to {root}; "
          f"next: labkit mc-prepare --benchmark {args.benchmark} --source {root} --out DIR")
    return 0


def print_scores(name: str, result: dict) -> str:
    from labkit.metrics import format_table

    table = format_table({name: result})
    extra = f"micro accuracy {result['overall']:.2f}  macro (over {len(result['per_dimension']) or 1} categories) " \
            f"{result['macro']:.2f}  random {result['random_baseline']:.2f}"
    text = table + "\n" + extra
    print(text)
    return text


def run_evaluate(args) -> int:
    if args.predictions:
        from labkit.mc.tasks import score_predictions

        path = Path(args.predictions)
        if not path.exists():
            raise FileNotFoundError(f"predictions file {str(path)!r} does not exist")
        rows = read_rows(path)
        missing = [i for i, r in enumerate(rows, 1) if not {"prediction", "answer", "n_options"} <= set(r)]
        if missing:
            raise ValueError(f"{path}:{missing[0]}: needs prediction, answer and n_options (as mc-evaluate writes)")
        print_scores(path.parent.name or path.stem, score_predictions(rows))
        return 0
    if not args.model or not args.data:
        raise ValueError("give --model and --data (or --predictions FILE)")
    from labkit.evaluate import evaluate_mc

    result = evaluate_mc(args.model, args.data, args.split, form=args.form, image_size=args.image_size,
                         batch_size=args.batch_size, out_dir=args.out, max_new_tokens=args.max_new_tokens,
                         limit=args.limit)
    print_scores(Path(args.model).name, result)
    if args.out:
        print(f"wrote {Path(args.out) / 'predictions.jsonl'} and results.json")
    return 0
