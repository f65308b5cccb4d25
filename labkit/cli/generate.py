"""`labkit generate --originals DIR --out DIR --recipe recipes/generate/small.yaml`: candidates from product photos.

The paper's generation pipeline (see `labkit.generate`): segment each original, draw a layout,
compose reference background | placeholder side by side, inpaint with FLUX.1 Fill conditioned on
FLUX.1 Redux, keep the right half of 4 seeds as candidates A-D. Writes the unlabelled
`exploration` split (source=generated) into --out, with the intermediate images under
--out/work/ and one record per finished original under --out/done/ (a rerun resumes).

Several GPUs: `accelerate launch -m labkit generate ...` splits the originals between processes.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("generate", help="generate 4 candidates per product photo (FLUX Fill + Redux)", description=__doc__)
    p.add_argument("--originals", required=True, help="folder of product photos (packshots on plain backgrounds for the threshold segmenter)")
    p.add_argument("--backgrounds", default=None, help="folder of reference backgrounds; default: the synthetic scene gallery")
    p.add_argument("--out", required=True, help="output dataset folder (exploration split + work/ + done/)")
    p.add_argument("--recipe", default="recipes/generate/small.yaml", help="generation recipe YAML (recipes/generate/*.yaml)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N originals (sorted by path)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's base seed")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's denoising steps")
    p.add_argument("--size", type=int, default=None, help="override the recipe's half size (px, multiple of 16)")
    p.add_argument("--segmenter", choices=("threshold", "birefnet"), default=None, help="override the recipe's segmenter")
    p.add_argument("--trust-remote-code", action="store_true", help="allow BiRefNet's repository code (opt-in)")
    p.add_argument("--force", action="store_true",
                   help="threshold segmenter: keep a 'product' covering over 60%% of the photo (default: skip it, it is likely background)")
    p.add_argument("--strict", action="store_true", help="stop at the first original that cannot be segmented (default: skip it, reason in OUT/skipped/)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from labkit.generate import load_generate_recipe, run_generation

    overrides = {k: v for k, v in {"seed": args.seed, "steps": args.steps, "size": args.size, "segmenter": args.segmenter}.items() if v is not None}
    if args.trust_remote_code:
        overrides["trust_remote_code"] = True
    from labkit.recipes import resolve_recipe_path

    cfg = load_generate_recipe(str(resolve_recipe_path(args.recipe)), overrides)
    if args.force:  # merged into the recipe's own threshold options
        cfg.segmenter_options = {**cfg.segmenter_options,
                                 "threshold": {**cfg.segmenter_options.get("threshold", {}), "force": True}}
    summary = run_generation(args.originals, args.out, cfg, backgrounds=args.backgrounds, limit=args.limit, strict=args.strict)
    if "samples" in summary:  # main process
        print(
            f"exploration split: {summary['samples']} samples in {summary['split']} "
            f"({summary['made_now']} made now, {summary['skipped']} skipped; reasons in {args.out}/skipped/)"
        )
    return 0
