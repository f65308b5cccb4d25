"""`labkit mine-hard --model SFT_MODEL --data D --split train --out RUN_DIR`: hard-case mining.

Runs the model over the split with the evaluator (`labkit.evaluate.evaluate`, so "correct"
means what the metric means): correct = easy, wrong = hard. Writes ``predictions.jsonl``,
``hard_cases.jsonl`` (id, response, prediction, answer, dimension, hard) and ``mining.json``
(counts) into RUN_DIR; an HCM-GRPO recipe points ``hcm.hard_cases`` at RUN_DIR.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("mine-hard", help="split a training set into easy and hard cases with a model", description=__doc__)
    p.add_argument("--model", required=True, help="model folder (usually the SFT model's final/)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="train", help="split to mine (default: train)")
    p.add_argument("--out", required=True, help="run folder for hard_cases.jsonl and mining.json")
    p.add_argument("--form", default="cot", help="prompt form: cot or direct (as the model was trained)")
    p.add_argument("--layout", default="separate", help="image layout: separate or grid")
    p.add_argument("--variant", default="train", help="answer variant: train (all letters) or eval (one letter)")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this square size")
    p.add_argument("--batch-size", type=int, default=8, help="generation batch size")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation length (default: the evaluator's)")
    p.add_argument("--limit", type=int, default=None, help="mine only the first N samples")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.hcm import mine_hard

    kw = {}
    if args.max_new_tokens:
        kw["max_new_tokens"] = args.max_new_tokens
    if args.limit:
        kw["limit"] = args.limit
    s = mine_hard(args.model, args.data, args.split, args.out, form=args.form, layout=args.layout, variant=args.variant,
                  image_size=args.image_size, batch_size=args.batch_size, **kw)
    print(f"mined {s['n']} samples of {args.split}: {s['hard']} hard, {s['easy']} easy ({s['unparsed']} unparsed)")
    print(f"wrote {args.out}/hard_cases.jsonl and {args.out}/mining.json")
    return 0
