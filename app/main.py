"""Start the app: load the model once, open the annotation store, register the data, serve.

    python -m app.main --model data/models/small-internvl --store data/annotations.sqlite --data data/synth
    labkit app ...            (the same, with defaults for `make app`; see labkit/cli/app.py)

Binds 127.0.0.1 unless ``--host`` says otherwise. With ``--auth-file`` every visitor logs in and
each label is attributed to the logged-in annotator (see `app.handlers.read_auth_file`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class AppConfig:
    """What `serve` needs (the CLI fills it)."""

    model: str | None = field(default=None, metadata={"help": "model folder (labkit.models.load); None: annotation only"})
    store: str = field(default="data/annotations.sqlite", metadata={"help": "annotation store (SQLite)"})
    data: str | None = field(default=None, metadata={"help": "dataset folder whose samples are screened and annotated"})
    hard_cases: str | None = field(default=None, metadata={"help": "HCM mining folder or hard_cases.jsonl to load as the hard queue"})
    host: str = field(default="127.0.0.1", metadata={"help": "interface to bind (127.0.0.1: this machine only)"})
    port: int = field(default=7860, metadata={"help": "port (0: a free one)"})
    auth_file: str | None = field(default=None, metadata={"help": "JSON or user:password lines; login required"})
    annotator: str = field(default="annotator", metadata={"help": "annotator name when no login is required"})
    max_new_tokens: int = field(default=256, metadata={"help": "longest reasoning the model may write"})
    prefill_cot: bool = field(default=True, metadata={"help": "ask the model for reasoning on items that have none"})
    max_file_size: str = field(default="25mb", metadata={"help": "largest upload Gradio accepts (e.g. 25mb)"})
    hard_cases_optional: bool = field(default=False, metadata={"help": "warn instead of failing when the hard cases do not fit the data"})


def prepare(cfg: AppConfig):
    """Load everything once: (demo, auth callable or None, summary dict)."""
    from app import handlers as H
    from app.ui import build_demo
    from labkit.store import AnnotationStore

    screener = None
    if cfg.model:
        screener = H.Screener.load(cfg.model, max_new_tokens=cfg.max_new_tokens)
    store = AnnotationStore(cfg.store)
    index = None
    mined: dict[str, str] = {}
    if cfg.data:
        index = H.SampleIndex(cfg.data)
        for split in index.splits:
            store.register_split(cfg.data, split, dataset=index.name)
        if cfg.hard_cases:
            path = Path(cfg.hard_cases)
            if path.is_dir():
                path = path / "hard_cases.jsonl"
            try:
                store.import_hard_cases(path, index.name)
                mined = H.read_mined_responses(path)
            except (ValueError, FileNotFoundError) as exc:
                if not cfg.hard_cases_optional:
                    raise
                print(f"labkit app: warning: hard cases not loaded ({exc})", flush=True)
    elif cfg.hard_cases:
        raise ValueError("--hard-cases needs --data (the dataset the hard cases come from)")
    auth = None
    if cfg.auth_file:
        users = H.read_auth_file(cfg.auth_file)
        for name in users:
            store.add_annotator(name)
        auth = H.make_auth(users, store)
    demo = build_demo(screener, store, index, annotator=cfg.annotator, mined=mined, prefill_cot=cfg.prefill_cot)
    summary = {
        "model": cfg.model, "store": str(cfg.store), "data": cfg.data,
        "samples": len(index) if index else 0,
        "hard": len(store.queue("hard", dataset=index.name)) if index else 0,
        "login": bool(auth),
    }
    return demo, auth, summary


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests and benchmarks)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve(cfg: AppConfig, block: bool = True):
    """Build and launch; returns the demo (already running when ``block`` is False; stop it
    with ``demo.close()``). Port 0 picks a free port; ``demo.local_url`` says where it is."""
    from app.ui import launch_kwargs

    if not cfg.port:
        cfg.port = free_port(cfg.host)
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.auth_file:
        print(f"labkit app: warning: serving on {cfg.host} without --auth-file; anyone who reaches this "
              "port can label as the default annotator", flush=True)
    demo, auth, summary = prepare(cfg)
    print(f"labkit app: model={summary['model']} data={summary['data']} samples={summary['samples']} "
          f"hard={summary['hard']} store={summary['store']} login={'yes' if summary['login'] else 'no'}", flush=True)
    demo.launch(
        server_name=cfg.host, server_port=cfg.port, auth=auth,
        auth_message="Log in with your annotator name and password." if auth else None,
        prevent_thread_lock=not block, show_error=True, quiet=not block, max_file_size=cfg.max_file_size,
        **launch_kwargs(),
    )
    return demo


if __name__ == "__main__":  # pragma: no cover - thin wrapper
    import sys

    from labkit.cli import main

    sys.exit(main(["app", *sys.argv[1:]]))
