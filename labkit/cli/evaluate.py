"""`labkit evaluate --model M --data D --split test --out RUN_DIR`: the paper's metric on a split.

Batched generation (left padding, greedy unless ``--do-sample``), answer parsing, the score
overall and per dimension next to the random baseline of the same samples, per-sample
predictions in ``RUN_DIR/predictions.jsonl`` and ``RUN_DIR/results.json``. Rerunning with the
same ``--out`` continues an interrupted evaluation. ``--judge openai:MODEL`` evaluates an
API model (OpenAI-compatible endpoint) instead of a local one, as the paper's Table 3 does.
"""
from __future__ import annotations

import argparse
import json

from labkit.cli.annotate import add_endpoint_arguments, judge_options
from labkit.metrics import format_table
from labkit.prompts import LAYOUTS, STYLES, VARIANTS

# labkit.evaluate, labkit.judges and labkit.screen are imported in `run`: every command's module is
# imported to build the parser, and they pull in PIL, datasets and the model code (the CLI must start fast).


def register(sub):
    p = sub.add_parser("evaluate", help="evaluate a screener on a dataset split", description=__doc__)
    p.add_argument("--model", help="model folder, or hub alias (InternVL3-1B-hf, InternVL3-2B-hf, Qwen2.5-VL-3B-Instruct)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--prompt", dest="form", choices=("cot", "direct"), default="cot", help="prompt form")
    p.add_argument("--layout", choices=LAYOUTS, default=None, help="image layout (default: the model's recipe, else separate)")
    p.add_argument("--prompt-style", dest="prompt", choices=STYLES, default=None,
                   help="prompt wording (default: the model's recipe, else full)")
    p.add_argument("--variant", choices=VARIANTS, default=None,
                   help="answer rule: train = all acceptable letters, eval = one letter (the paper's evaluation prompt); "
                        "default: the model's recipe, else train")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this square side first (default: the model's recipe)")
    p.add_argument("--batch-size", type=int, default=8, help="samples per generate call")
    p.add_argument("--out", default=None, help="run folder for predictions.jsonl and results.json (enables resume)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="generation length limit")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--top-k", type=int, default=None, help="sampling top-k (none by default)")
    p.add_argument("--top-p", type=float, default=None, help="sampling nucleus top-p")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--judge", default=None, help="judge spec instead of --model: openai:MODEL or local:PATH")
    p.add_argument("--concurrency", type=int, default=4, help="openai judge: requests in flight at once (default 4)")
    add_endpoint_arguments(p)   # --base-url, --api-key-env, --prices, --cache-dir, --no-cache, --request-retries
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--name", default=None, help="row name in the printed table (default: the model)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.evaluate import evaluate
    from labkit.judges import make_judge
    from labkit.screen import default_conversion

    if not args.model and not args.judge:
        raise ValueError("give --model (a model folder or hub alias) or --judge")
    if args.model and args.judge:
        raise ValueError("give either --model or --judge, not both")
    judge = args.judge
    if judge:
        # The same endpoint options as `labkit annotate`; a reply is at most --max-new-tokens long.
        opts = judge_options(argparse.Namespace(**{**vars(args), "max_tokens": args.max_new_tokens}))
        judge = make_judge(args.judge, **opts)
    # A trained folder is asked the way it was trained (its recipe's conversion), unless overridden.
    conv = default_conversion(args.model)
    conv.update({k: getattr(args, k) for k in ("layout", "prompt", "variant", "image_size") if getattr(args, k) is not None})
    result = evaluate(
        args.model, args.data, args.split, form=args.form, layout=conv["layout"], variant=conv["variant"],
        image_size=conv["image_size"], prompt=conv["prompt"], batch_size=args.batch_size, out_dir=args.out,
        max_new_tokens=args.max_new_tokens, do_sample=args.do_sample, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, seed=args.seed, limit=args.limit, judge=judge,
        progress=not args.no_progress, device=args.device,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    name = args.name or args.model or args.judge
    print(format_table({name: result}))
    rate = f"{result['samples_per_s']:.2f} samples/s" if result["samples_per_s"] else "nothing new generated"
    print(f"{result['generated']} generated, {result['resumed']} resumed, {result['wall_s']:.1f} s ({rate})")
    if result["predictions_path"]:
        print(f"predictions: {result['predictions_path']}")
    return 0
