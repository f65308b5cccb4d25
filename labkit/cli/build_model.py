"""`labkit build-model --arch internvl|qwen2_5_vl --size tiny|small --out DIR`: a random screener.

Builds a randomly initialised model of the real transformers architecture with a locally
trained tokenizer and processor (see `labkit.models`), saved so that plain transformers
reloads it offline.
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("build-model", help="build a tiny/small random screener offline", description=__doc__)
    p.add_argument("--arch", choices=("internvl", "qwen2_5_vl"), default="internvl", help="model family")
    p.add_argument("--size", choices=("tiny", "small"), default="small", help="tiny: tests; small: the CPU demo model")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from labkit.models import build_model

    out = build_model(args.arch, args.size, args.out, seed=args.seed)
    info = json.loads((out / "labkit_model.json").read_text())
    print(f"built {info['arch']} {info['size']} ({info['parameters']:,} parameters, "
          f"{info['image_tokens']} tokens per image, seed {info['seed']}) in {out}")
    return 0
