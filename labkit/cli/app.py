"""`labkit app`: the Gradio app for screening and annotation (also `make app`).

    labkit app --model M --store data/annotations.sqlite --data D [--hard-cases RUN/hard_cases.jsonl]
               [--host 127.0.0.1 --port 7860 --auth-file annotators.txt]
    labkit app adduser NAME --auth-file annotators.txt [--role annotator|reviewer|admin] [--password-stdin]

Without ``--model`` it serves the demo's trained model when ``runs/demo`` holds one: the arm
with the best ``overall`` test score in ``runs/demo/results.json`` (its name and score show in
the title, with a warning when its most common answer covers more than half of the test set),
else it builds the untrained ``small`` InternVL screener into ``data/models/small-internvl`` (once). Without ``--data`` it uses the
demo's dataset when there is one, else a small synthetic set it makes in ``data/app-synth``
(when the generator is available); hard cases mined by the demo load as the hard queue.

The app binds 127.0.0.1 unless ``--host`` says otherwise; another host needs ``--auth-file``
(or ``--insecure``). ``--auth-file``: ``name:scrypt-hash:role`` lines written by ``labkit app
adduser`` (or JSON, see `labkit.app.annotation.read_auth_file`); plain-text passwords are refused. With
it login is required (failed logins are rate-limited) and every label is attributed to the
logged-in annotator; roles: annotator, reviewer (flagged and disagreements queues), admin (also
hard cases).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from getpass import getpass
from pathlib import Path

from labkit.jsonl import read_rows
from labkit.models import build_model
from labkit.pipeline import DEMO_ARMS

# Without results.json the app serves the first of these with a model folder: the demo's arms
# (`labkit.pipeline.DEMO_ARMS`) latest first, so hcm-grpo, dpa-grpo, grpo, then sft (mine,
# baseline-cnn and base-cot leave no model folder of their own and are passed over).
SERVE_ORDER = tuple(reversed(DEMO_ARMS))
DEFAULT_MODEL_DIR = Path("data/models/small-internvl")
DEFAULT_DATA_DIR = Path("data/app-synth")


def register(sub):
    p = sub.add_parser("app", help="serve the screening and annotation app (Gradio)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("subcommand", nargs="?", choices=["adduser"], help="adduser NAME: add a login to --auth-file")
    p.add_argument("name", nargs="?", help="adduser: the annotator's name")
    p.add_argument("--role", default="annotator", choices=["annotator", "reviewer", "admin"], help="adduser: role")
    p.add_argument("--password-stdin", action="store_true", help="adduser: read the password from stdin")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --auth-file")
    p.add_argument("--max-pixels", type=int, default=1024 * 1024,
                   help="pixels per uploaded image; larger uploads are downscaled while decoding")
    p.add_argument("--max-queue", type=int, default=16, help="requests that may wait; more are refused")
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


def _arm_model(demo_dir: Path, arm: str, row: dict) -> Path | None:
    for candidate in ([Path(row["model"])] if row.get("model") else []) + [
            demo_dir / (row.get("dir") or arm) / "final", demo_dir / (row.get("dir") or arm)]:
        if (candidate / "config.json").exists():
            return candidate
    return None


def best_demo_arm(demo_dir: Path) -> dict | None:
    """The arm with the best ``overall`` test score in ``results.json`` whose model is on disk:
    ``{"arm", "model", "score", "random", "warning"}``; None without results."""
    path = demo_dir / "results.json"
    if not path.exists():
        return None
    try:
        arms = json.loads(path.read_text()).get("arms") or {}
    except ValueError:
        return None
    scored = []
    for name, row in arms.items():
        if isinstance(row, dict) and row.get("kind") == "baseline":
            continue  # the CNN baseline has no VLM to serve
        model = _arm_model(demo_dir, name, row) if isinstance(row, dict) else None
        if model is not None and isinstance(row.get("overall"), (int, float)):
            scored.append((row["overall"], name, row, model))
    if not scored:
        return None
    score, name, row, model = max(scored, key=lambda t: t[0])
    return {"arm": name, "model": model, "score": float(score), "random": row.get("random_baseline"),
            "warning": majority_warning(demo_dir / (row.get("dir") or name) / "eval" / "predictions.jsonl")}


def majority_warning(predictions: Path, limit: float = 0.5) -> str | None:
    """A warning when one answer makes up more than ``limit`` of a model's test predictions."""
    if not predictions.exists():
        return None
    answers = [row.get("prediction") or "(no answer)" for row in read_rows(predictions) if isinstance(row, dict)]
    if not answers:
        return None
    answer, count = Counter(answers).most_common(1)[0]
    if count / len(answers) <= limit:
        return None
    return (f"this model answers {answer} on {count} of {len(answers)} test samples ({count / len(answers):.0%}); "
            "its verdicts say more about that habit than about the images")


def find_demo_model(demo_dir: Path) -> Path | None:
    """The best-scoring arm's model folder (`best_demo_arm`), else the first finished arm of
    `SERVE_ORDER` when the run has no results.json yet."""
    if not demo_dir.is_dir():
        return None
    best = best_demo_arm(demo_dir)
    if best:
        return best["model"]
    for arm in SERVE_ORDER:
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
        from labkit.synth import make_dataset  # lazy and guarded: the generator is optional here
    except ImportError:
        print("labkit app: no dataset given and no generator available; the Annotate tab is off (use --data)")
        return None
    print(f"labkit app: making a small synthetic dataset in {DEFAULT_DATA_DIR}")
    make_dataset(DEFAULT_DATA_DIR, train=16, test=8, pseudo=0, exploration=0, size=64, seed=0, workers=1)
    return DEFAULT_DATA_DIR


def run_adduser(args) -> int:
    from labkit.app.annotation import add_user  # lazy: the CLI must start fast (the app pulls in plotly and PIL)

    if not args.name:
        raise ValueError("adduser needs a NAME: labkit app adduser NAME --auth-file FILE")
    if not args.auth_file:
        raise ValueError("adduser needs --auth-file FILE (created when missing)")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass(f"password for {args.name}: ")
        if getpass("again: ") != password:
            raise ValueError("the passwords differ")
    add_user(args.auth_file, args.name, password, args.role)
    print(f"labkit app: {args.name} ({args.role}) written to {args.auth_file} as a scrypt hash")
    return 0


def run(args) -> int:
    from labkit.app.main import AppConfig, ConfigError, check_config, serve  # lazy, as in run_adduser

    if args.subcommand == "adduser":
        return run_adduser(args)
    demo_dir = Path(args.demo_dir)
    common = dict(store=args.store, host=args.host, port=args.port, auth_file=args.auth_file, annotator=args.annotator,
                  max_new_tokens=args.max_new_tokens, prefill_cot=not args.no_prefill,
                  max_file_size=args.max_file_size, insecure=args.insecure, max_pixels=args.max_pixels,
                  max_queue=args.max_queue)
    try:  # host, auth file and given paths first: a mistake is reported at once, not after a model build
        check_config(AppConfig(model=args.model, data=args.data, **common))
    except ConfigError as exc:
        print(f"labkit app: {exc}", file=sys.stderr)
        return 2
    best = best_demo_arm(demo_dir) if demo_dir.is_dir() else None
    model = args.model or str(default_model(demo_dir))
    data = args.data or (str(d) if (d := default_data(demo_dir)) else None)
    hard = args.hard_cases
    auto_hard = False
    if hard is None and not args.data and data and find_demo_data(demo_dir) and Path(data) == find_demo_data(demo_dir):
        found = find_demo_hard_cases(demo_dir)
        hard, auto_hard = (str(found), True) if found else (None, False)
    info = None
    if best and Path(model).resolve() == Path(best["model"]).resolve():
        info = {k: best[k] for k in ("arm", "score", "random", "warning")}
    cfg = AppConfig(model=model, data=data, hard_cases=hard, hard_cases_optional=auto_hard, model_info=info, **common)
    try:
        serve(cfg, block=True)
    except ConfigError as exc:
        print(f"labkit app: {exc}", file=sys.stderr)
        return 2
    return 0
