"""`labkit pretrain --out data/models/small-pretrained [--seed 0] [--quick]`: the small pretrained VLM.

Builds the lab's own pretrained small InternVL, once (see `labkit.pretrain`): synthetic data ->
random model -> vision pretraining on the defects -> single-image descriptions -> five-image
descriptions. Stages are cached in OUT/stages and skipped on a rerun. `labkit demo` runs it
when its cache is missing.
"""
from __future__ import annotations

from dataclasses import fields


def register(sub):
    from labkit.pretrain import PretrainConfig

    p = sub.add_parser("pretrain", help="make the small pretrained screener (one-time, cached)", description=__doc__)
    p.add_argument("--out", required=True, help="output folder: the pretrained model (stages cached in OUT/stages)")
    p.add_argument("--quick", action="store_true", help="a few samples and steps (tests): same stages in about a minute")
    for f in fields(PretrainConfig):
        if f.name in ("arch",):
            continue
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default) if f.default is not None else int,
                       default=None, help=f"{f.metadata['help']} (default {f.default})")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from labkit.pretrain import PretrainConfig, run_pretrain

    given = {f.name: getattr(args, f.name) for f in fields(PretrainConfig)
             if f.name != "arch" and getattr(args, f.name) is not None}
    cfg = PretrainConfig.quick(**given) if args.quick else PretrainConfig(**given)
    out = run_pretrain(args.out, cfg)
    log = json.loads((out / "pretrain.json").read_text())
    minutes = sum(s.get("seconds", 0) for s in log["stages"].values()) / 60
    auc = log["stages"].get("vision", {}).get("heldout_auc", {}).get("overall")
    print(f"pretrained {cfg.size} {cfg.arch} in {out} ({minutes:.1f} minutes of stages; held-out vision AUC "
          f"{auc if auc is None else round(auc, 3)})")
    return 0
