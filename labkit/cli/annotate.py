"""`labkit annotate auto|answer-driven|oracle`: captions and CoT into a NEW dataset folder.

    labkit annotate auto --judge openai:gpt-4o --data data/synth --split pseudo_label --out data/synth-auto
    labkit annotate answer-driven --judge local:data/models/small-internvl --data data/synth --split train \\
        --out data/synth-ad --max-retries 3
    labkit annotate oracle --data data/synth --split train --out data/synth-oracle

``openai:MODEL`` reads OPENAI_BASE_URL and OPENAI_API_KEY (or --base-url, --api-key-env).
Resumable: rerun the same command and the samples already done are skipped (nothing is sent
twice). Prints the weak-label accuracy (labelled samples, paper's metric), the rejection rate
(answer-driven) and the cost. See `labkit.annotate`.
"""
from __future__ import annotations

import json
import os


def register(sub):
    p = sub.add_parser("annotate", help="fill captions / CoT with a judge (auto, answer-driven) or the ground truth (oracle)",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("method", choices=["auto", "answer-driven", "oracle"], help="annotation method")
    p.add_argument("--judge", help="openai:MODEL or local:PATH_OR_HUB_ID (not needed for oracle)")
    p.add_argument("--data", required=True, help="source dataset folder (never modified)")
    p.add_argument("--split", required=True, help="split to annotate (train, test, pseudo_label, exploration)")
    p.add_argument("--out", required=True, help="NEW dataset folder for the annotated split (rerun to resume)")
    p.add_argument("--concurrency", type=int, default=4, help="judge requests in flight at once (default 4)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="answer-driven: extra attempts after a reply that reaches another answer (default 3)")
    p.add_argument("--layout", choices=["separate", "grid"], default="separate", help="how the judge sees A-D")
    p.add_argument("--image-size", type=int, help="resize images to this square size before sending")
    p.add_argument("--limit", type=int, help="annotate only the first N samples")
    p.add_argument("--chunk", type=int, default=16, help="samples per round between journal writes (default 16)")
    p.add_argument("--drop-rejected", action="store_true", help="answer-driven: leave never-accepted samples out")
    add_endpoint_arguments(p)
    p.add_argument("--max-tokens", type=int, default=1024, help="openai: max tokens per reply")
    p.add_argument("--max-new-tokens", type=int, default=256, help="local: max new tokens per reply")
    p.add_argument("--batch-size", type=int, default=8, help="local: generation batch size")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def add_endpoint_arguments(p) -> None:
    """The OpenAI-compatible endpoint flags shared by `labkit annotate` and `labkit evaluate`."""
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--prices", help="JSON file {model: {input, output}} in USD per 1M tokens")
    p.add_argument("--cache-dir", help="judge response cache (default: $LABKIT_JUDGE_CACHE or data/judge_cache)")
    p.add_argument("--no-cache", action="store_true", help="do not cache judge replies on disk")
    p.add_argument("--request-retries", type=int, default=5,
                   help="openai: retries of a request after a connection error, 429 or 5xx, with backoff (default 5)")


def judge_options(args) -> dict:
    """Options for `labkit.judges.make_judge` from the CLI flags (shared with other commands)."""
    from labkit.judges import load_prices

    kind = (args.judge or "").partition(":")[0]
    if kind == "openai":
        opts = {"max_tokens": args.max_tokens, "concurrency": args.concurrency, "max_retries": args.request_retries}
        if args.base_url:
            opts["base_url"] = args.base_url
        if os.environ.get(args.api_key_env):
            opts["api_key"] = os.environ[args.api_key_env]
        if args.prices:
            opts["prices"] = load_prices(args.prices)
        if args.no_cache:
            opts["cache_dir"] = None
        elif args.cache_dir:
            opts["cache_dir"] = args.cache_dir
        return opts
    if kind == "local":
        opts = {"max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}
        if args.cache_dir and not args.no_cache:
            opts["cache_dir"] = args.cache_dir
        return opts
    return {}


def run(args) -> int:
    from labkit.annotate import AnnotateConfig, annotate, format_summary

    if args.method != "oracle" and not args.judge:
        raise ValueError(f"{args.method} needs --judge (openai:MODEL or local:PATH)")
    cfg = AnnotateConfig(method=args.method, layout=args.layout, image_size=args.image_size,
                         concurrency=args.concurrency, max_retries=args.max_retries, chunk=args.chunk,
                         limit=args.limit, drop_rejected=args.drop_rejected, progress=not args.quiet)
    summary = annotate(args.method, args.data, args.split, args.out, judge=args.judge if args.method != "oracle" else None,
                       config=cfg, **(judge_options(args) if args.method != "oracle" else {}))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 3 if summary.get("incomplete") else 0
