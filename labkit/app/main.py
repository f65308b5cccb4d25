"""Start the app: load the model once, open the annotation store, register the data, serve.

    labkit app --model data/models/small-internvl --store data/annotations.sqlite --data data/synth
    python -m labkit.app ...  (the same; defaults for `make app` in labkit/cli/app.py)

Binds 127.0.0.1 unless ``--host`` says otherwise; another host without ``--auth-file`` is refused
unless ``--insecure`` is given. With ``--auth-file`` every visitor logs in (failed logins are
rate-limited) and each label is attributed to the logged-in annotator (see
`labkit.app.annotation.read_auth_file`). Everything that can be checked cheaply (host, auth
file, model folder, dataset) is checked before the model loads. The app's temporary folder (Gradio's upload
cache and the images it serves) is removed when it closes or the process exits.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from labkit.app import handlers as H
from labkit.store import AnnotationStore, StoreError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(ValueError):
    """A bad app setting, found before anything heavy is loaded."""

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
    insecure: bool = field(default=False, metadata={"help": "allow a non-loopback host without --auth-file"})
    max_pixels: int = field(default=1024 * 1024, metadata={"help": "pixels per uploaded image; larger ones are downscaled on load"})
    max_queue: int = field(default=16, metadata={"help": "requests that may wait in the queue; more are refused"})
    login_max_failures: int = field(default=5, metadata={"help": "failed logins for one name before it is locked"})
    login_lockout_s: float = field(default=60.0, metadata={"help": "seconds a name stays locked after too many failures"})
    model_info: dict | None = field(default=None, metadata={"help": "arm, score, random, warning: shown in the title"})


def check_config(cfg: AppConfig) -> dict | None:
    """Refuse bad settings before the model loads; returns the auth file's users (or None).

    Raises ConfigError naming the problem: a non-loopback host without login (unless
    ``insecure``), an unreadable auth file, a missing model folder or dataset folder.
    """
    if cfg.host not in LOOPBACK and not cfg.auth_file and not cfg.insecure:
        raise ConfigError(f"--host {cfg.host} serves other machines, but there is no --auth-file: anyone reaching "
                          "the port could label. Add --auth-file (labkit app adduser NAME --auth-file FILE), or "
                          "pass --insecure to serve without login anyway")
    users = None
    if cfg.auth_file:
        try:
            users = H.read_auth_file(cfg.auth_file)
        except (ValueError, FileNotFoundError) as exc:
            raise ConfigError(f"auth file: {exc}") from exc
    if cfg.model and not (Path(cfg.model) / "config.json").exists():
        raise ConfigError(f"model folder {cfg.model!r} has no config.json (build or train a model first)")
    if cfg.data and not Path(cfg.data).is_dir():
        raise ConfigError(f"dataset folder {cfg.data!r} does not exist")
    if cfg.max_pixels < 64 * 64:
        raise ConfigError(f"--max-pixels {cfg.max_pixels} is too small (at least {64 * 64})")
    return users


def prepare(cfg: AppConfig, temp_dir: str | None = None):
    """Check the settings, then load everything once: (demo, auth callable or None, summary dict)."""
    from labkit.app.ui import build_demo  # lazy: gradio takes seconds to import; the settings are checked first

    users = check_config(cfg)
    store = AnnotationStore(cfg.store)
    index = None
    mined: dict[str, str] = {}
    if cfg.data:
        index = H.SampleIndex(cfg.data)
        for split in index.splits:
            try:
                store.register_split(cfg.data, split, dataset=index.name)
            except StoreError as exc:
                raise ConfigError(str(exc)) from exc
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
        raise ConfigError("--hard-cases needs --data (the dataset the hard cases come from)")
    auth = None
    if users is not None:
        for name in users:
            store.add_annotator(name)
        auth = H.make_auth(users, store, H.LoginLimiter(cfg.login_max_failures, lockout_s=cfg.login_lockout_s))
    screener = None
    if cfg.model:  # last: the slow part, after every cheap check passed
        screener = H.Screener.load(cfg.model, max_new_tokens=cfg.max_new_tokens)
    demo = build_demo(screener, store, index, annotator=cfg.annotator, mined=mined, prefill_cot=cfg.prefill_cot,
                      users=users, model_info=cfg.model_info, max_pixels=cfg.max_pixels, temp_dir=temp_dir)
    summary = {
        "model": cfg.model, "store": str(cfg.store), "data": cfg.data,
        "samples": len(index) if index else 0,
        "hard": len(store.queue("hard", dataset=index.name)) if index else 0,
        "login": bool(auth),
    }
    return demo, auth, summary


_PROCESS_TEMP: list[str] = []


def process_temp_dir() -> str:
    """This process's temporary folder for the app, made once: Gradio's upload cache
    (``GRADIO_TEMP_DIR``, which Gradio reads per call, so one value per process) and each app's
    image folder. Removed when the process exits."""
    if not _PROCESS_TEMP:
        path = tempfile.mkdtemp(prefix=f"labkit-app-{os.getpid()}-")
        os.environ["GRADIO_TEMP_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _PROCESS_TEMP.append(path)
    return _PROCESS_TEMP[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve(cfg: AppConfig, block: bool = True):
    """Build and launch; returns the demo (already running when ``block`` is False; stop it
    with ``demo.close()``). Port 0 picks a free port; ``demo.local_url`` says where it is."""
    from labkit.app.ui import launch_kwargs  # lazy, as in prepare

    check_config(cfg)  # before anything else: a bad setting fails in well under a second
    if not cfg.port:
        cfg.port = free_port(cfg.host)
    if cfg.host not in LOOPBACK and not cfg.auth_file:
        print(f"labkit app: warning: --insecure: serving on {cfg.host} without login; anyone who reaches this "
              "port can label as the default annotator", flush=True)
    # The images this app serves live in its own folder (removed on close) inside the process's
    # temporary folder, which also holds Gradio's upload cache (removed at exit).
    temp_dir = tempfile.mkdtemp(prefix="app-", dir=process_temp_dir())
    try:
        demo, auth, summary = prepare(cfg, temp_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    print(f"labkit app: model={summary['model']} data={summary['data']} samples={summary['samples']} "
          f"hard={summary['hard']} store={summary['store']} login={'yes' if summary['login'] else 'no'}", flush=True)
    # A bounded queue: past max_queue waiting requests, new ones are refused instead of piling up in memory.
    demo.queue(max_size=cfg.max_queue)
    demo.temp_dir = temp_dir
    close = demo.close

    def close_and_clean(*args, **kw):
        try:
            return close(*args, **kw)
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)

    demo.close = close_and_clean
    # show_error=False: an unexpected exception reaches the visitor as a bare "Error" (no message,
    # no traceback); the app's own messages (gr.Error, inline status lines) carry no server path.
    demo.launch(
        server_name=cfg.host, server_port=cfg.port, auth=auth,
        auth_message="Log in with your annotator name and password." if auth else None,
        prevent_thread_lock=not block, show_error=False, quiet=not block, max_file_size=cfg.max_file_size,
        **launch_kwargs(),
    )
    return demo

