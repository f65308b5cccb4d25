"""`labkit app`: the Gradio app for screening and annotation (also `make app`).

    labkit app --model M --store data/annotations.sqlite --data D [--hard-cases RUN/hard_cases.jsonl]
               [--host 127.0.0.1 --port 7860 --auth-file annotators.txt]

Without ``--model`` it serves the demo's trained model when ``runs/demo`` holds one (the last
arm of HCM-GRPO > DPA-GRPO > GRPO > SFT that finished), else it builds the untrained ``small``
InternVL screener into ``data/models/small-internvl`` (once). Without ``--data`` it uses the
demo's dataset when there is one, else a small synthetic set it makes in ``data/app-synth``
(when the generator is available); hard cases mined by the demo load as the hard queue.

The app binds 127.0.0.1 unless ``--host`` says otherwise. ``--auth-file``: a JSON object
``{"name": "password"}`` or ``name:password`` lines (a password may be a ``scrypt$...`` hash, or
empty to use the one set with the store's CLI); then login is required and every label is
attributed to the logged-in annotator.
"""
from __future__ import annotations

from pathlib import Path

# Arms of the demo, best first: the app serves the first that has a final model.
DEMO_ARMS = ("hcm-grpo", "dpa-grpo", "grpo", "sft-cot", "sft")
DEFAULT_MODEL_DIR = Path("data/models/small-internvl")
DEFAULT_DATA_DIR = Path("data/app-synth")


def register(sub):
    p = sub.add_parser("app", help="serve the screening and annotation app (Gradio)", description=__doc__)
    p.add_argument("--model", help="model folder; default: the demo's trained model, else a small built one")
    p.add_argument("--store", default="data/annotations.sqlite", help="annotation store (SQLite file)")
    p.add_argument("--data", help="dataset folder to screen and annotate; default: the demo's data")
    p.add_argument("--hard-cases", help="HCM mining folder or hard_cases.jsonl to load as the hard queue")
    p.add_argument("--demo-dir", default="runs/demo", help="where to look for the demo's model, data and hard cases")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port")
    p.add_argument("--auth-file", help="annotators and passwords; login becomes required")
    p.add_argument("--annotator", default="annotator", help="annotator name when no login is required")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest reasoning the model may write")
    p.add_argument("--max-file-size", default="25mb", help="largest upload accepted (Gradio size string)")
    p.add_argument("--no-prefill", action="store_true", help="do not ask the model for reasoning on unlabelled items")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def _newest(paths):
    paths = [p for p in paths if p.exists()]
    return max(paths, key=lambda p: p.stat().st_mtime) if paths else None


def find_demo_model(demo_dir: Path) -> Path | None:
    """The best finished arm's model folder under the demo's run folder."""
    if not demo_dir.is_dir():
        return None
    for arm in DEMO_ARMS:
        for candidate in (demo_dir / arm / "final", demo_dir / arm / "model", demo_dir / arm):
            if (candidate / "config.json").exists():
                return candidate
    return None


def find_demo_data(demo_dir: Path) -> Path | None:
    """A dataset folder (``dataset.json``) inside the demo's run folder."""
    if not demo_dir.is_dir():
        return None
    if (demo_dir / "data" / "dataset.json").exists():  # where `make demo` writes its data
        return demo_dir / "data"
    found = _newest(list(demo_dir.glob("*/dataset.json")))
    return found.parent if found else None


def find_demo_hard_cases(demo_dir: Path) -> Path | None:
    if not demo_dir.is_dir():
        return None
    if (demo_dir / "mine" / "hard_cases.jsonl").exists():  # the demo's mining arm
        return demo_dir / "mine" / "hard_cases.jsonl"
    return _newest(list(demo_dir.glob("*/hard_cases.jsonl")))


def default_model(demo_dir: Path) -> Path:
    found = find_demo_model(demo_dir)
    if found:
        print(f"labkit app: serving the demo's model {found}")
        return found
    if not (DEFAULT_MODEL_DIR / "config.json").exists():
        from labkit.models import build_model

        print(f"labkit app: no trained model in {demo_dir}; building the untrained small screener in {DEFAULT_MODEL_DIR}")
        build_model("internvl", "small", DEFAULT_MODEL_DIR, seed=0)
    else:
        print(f"labkit app: no trained model in {demo_dir}; serving the untrained {DEFAULT_MODEL_DIR}")
    return DEFAULT_MODEL_DIR


def default_data(demo_dir: Path) -> Path | None:
    found = find_demo_data(demo_dir)
    if found:
        return found
    if (DEFAULT_DATA_DIR / "dataset.json").exists():
        return DEFAULT_DATA_DIR
    try:
        from labkit.synth import make_dataset
    except ImportError:
        print("labkit app: no dataset given and no generator available; the Annotate tab is off (use --data)")
        return None
    print(f"labkit app: making a small synthetic dataset in {DEFAULT_DATA_DIR}")
    make_dataset(DEFAULT_DATA_DIR, train=16, test=8, pseudo=0, exploration=0, size=64, seed=0, workers=1)
    return DEFAULT_DATA_DIR


def run(args) -> int:
    from app.main import AppConfig, serve

    demo_dir = Path(args.demo_dir)
    model = args.model or str(default_model(demo_dir))
    data = args.data or (str(d) if (d := default_data(demo_dir)) else None)
    hard = args.hard_cases
    auto_hard = False
    if hard is None and not args.data and data and find_demo_data(demo_dir) and Path(data) == find_demo_data(demo_dir):
        found = find_demo_hard_cases(demo_dir)
        hard, auto_hard = (str(found), True) if found else (None, False)
    cfg = AppConfig(model=model, store=args.store, data=data, hard_cases=hard, host=args.host, port=args.port,
                    auth_file=args.auth_file, annotator=args.annotator, max_new_tokens=args.max_new_tokens,
                    prefill_cot=not args.no_prefill, max_file_size=args.max_file_size, hard_cases_optional=auto_hard)
    serve(cfg, block=True)
    return 0
