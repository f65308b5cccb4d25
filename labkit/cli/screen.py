"""`labkit screen ITEMS --model M --out DIR`: screen unlabelled work in batches.

ITEMS is a folder with one sub-folder per item (``original.*``, ``A.*`` ... ``D.*``), a manifest
(``.csv``/``.jsonl`` with columns id, original, A, B, C, D), or a dataset folder with ``--split``
(default exploration). Writes ``predictions.jsonl`` (reply, parsed answer, accepted and rejected
candidates, per-candidate verdicts, timing), ``skipped.jsonl`` and ``gallery.html``. Rerunning
with the same ``--out`` skips finished items. ``--judge openai:MODEL`` screens through an
OpenAI-compatible endpoint (``--base-url``, key from ``--api-key-env``) instead of a local model.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from labkit.prompts import LAYOUTS, STYLES

# labkit.screen and labkit.judges are imported in `run`: every command's module is imported to
# build the parser, and they pull in PIL, datasets and the model code (the CLI must start fast).


def register(sub):
    p = sub.add_parser("screen", help="screen a folder, manifest or dataset split of unlabelled items", description=__doc__)
    p.add_argument("items", help="items folder, manifest (.csv/.jsonl) or dataset folder")
    p.add_argument("--model", help="model folder or hub alias (a trained final/ folder)")
    p.add_argument("--judge", default=None, help="judge spec instead of --model, e.g. openai:gpt-4o")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint for --judge (default: $OPENAI_BASE_URL)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--out", required=True, help="output folder (predictions.jsonl, gallery.html); reused to resume")
    p.add_argument("--split", default="exploration", help="split to screen when ITEMS is a dataset folder")
    p.add_argument("--batch-size", type=int, default=8, help="items per generate call (or judge requests in flight)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="generation length limit")
    p.add_argument("--form", choices=("cot", "direct"), default=None, help="prompt form (default: the model's recipe)")
    p.add_argument("--layout", choices=LAYOUTS, default=None, help="image layout (default: the model's recipe)")
    p.add_argument("--prompt-style", dest="prompt", choices=STYLES, default=None,
                   help="prompt wording (default: the model's recipe)")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this square side (default: the model's recipe)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.judges import make_judge
    from labkit.screen import collect_items, screen

    if bool(args.model) == bool(args.judge):
        raise ValueError("give --model (a model folder or hub alias) or --judge, one of them")
    judge = None
    if args.judge:
        opts = {"concurrency": args.batch_size}
        if args.judge.startswith("openai:"):
            opts.update(base_url=args.base_url, api_key=os.environ.get(args.api_key_env))
        judge = make_judge(args.judge, **opts)
    items, kind = collect_items(args.items, args.split)
    summary = screen(
        items, args.out, model=args.model, judge=judge, input_name=str(Path(args.items).resolve()),
        split=args.split if kind == "dataset" else None, form=args.form, layout=args.layout, prompt=args.prompt,
        image_size=args.image_size, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        progress=not args.no_progress, device=args.device,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rate = f"{summary['items_per_s']:.2f} items/s" if summary["items_per_s"] else "nothing new screened"
    print(f"{summary['items']} items ({kind}): {summary['screened']} screened, {summary['resumed']} resumed, "
          f"{summary['skipped']} skipped; {summary['accepted_any']} with an acceptable candidate, "
          f"{summary['unparsed']} without a parsed answer; {summary['wall_s']:.1f} s ({rate})")
    print(f"predictions: {summary['predictions_path']}")
    print(f"gallery: {summary['gallery_path']}")
    if summary["skipped"]:
        print(f"skipped items and why: {summary['skipped_path']}")
    return 0
