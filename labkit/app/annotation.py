"""Annotation handlers of the app (pure functions, no Gradio): dataset samples, labels in the
annotation store, what the Annotate tab shows, progress and agreement figures, login.

- `SampleIndex`: a dataset folder's samples by id; `read_mined_responses`: the model responses
  of an HCM mining file (``hard_cases.jsonl``), which prefill the reasoning of hard cases.
- `build_label`: checkboxes and tags -> a label the store accepts; `save_label`, `undo_label`.
- `item_view`: the images, the annotator's current label and reasoning, the model's suggestion
  (kept apart from the annotator's text) and, only where asked (``show_others``: the flagged
  and disagreements queues of a reviewer), the other annotators' answers. Labelling is blind
  everywhere else; showing others' answers is recorded in the store (`record_reveal`), so the
  agreement figures use blind labels only.
- `cot_provenance`: whether saved reasoning was typed by the annotator or a model suggestion
  accepted unedited.
- `progress_figure`, `agreement_figure`: plotly figures of `AnnotationStore.progress` and
  `AnnotationStore.agreement`.
- `read_auth_file`, `make_auth`, `add_user`, `LoginLimiter`: the app's login. The auth file
  holds scrypt hashes (never plain passwords) and a role per user: ``annotator`` (labels),
  ``reviewer`` (also the flagged and disagreements queues, with others' answers) or ``admin``
  (also imports hard cases and removes hard marks).

Re-exported by `labkit.app.handlers`; raises `labkit.app.uploads.UserError`; tested in ``tests/test_app_handlers.py``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.app.uploads import UserError
from labkit.conversions import sample_images
from labkit.data import DEFECT_DIMENSIONS, list_splits, load_split
from labkit.jsonl import read_by_id
from labkit.metrics import LETTERS, NONE_ANSWER
from labkit.store import StoreError, check_password, dataset_name, hash_password

NONE_CHOICE = "N"
DEFECT_TAGS = DEFECT_DIMENSIONS
UNSPECIFIED_DEFECT = "unspecified"  # a rejected candidate whose annotator gave no tag
CHOICES = list(LETTERS) + [NONE_CHOICE]


# ----------------------------------------------------------------------------- dataset samples

class SampleIndex:
    """Samples of a dataset folder by id (all splits), decoded on demand.

    ``name`` is the dataset's name in the annotation store (`labkit.store.dataset_name`).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        splits = list_splits(self.root)
        if not splits:
            raise FileNotFoundError(f"no dataset splits (*.parquet) in {str(self.root)!r}")
        self.name = dataset_name(self.root)
        self.splits = {s: load_split(self.root, s, validate=False) for s in splits}
        self._where: dict[str, tuple[str, int]] = {}
        for split, ds in self.splits.items():
            for i, sid in enumerate(ds["id"]):
                self._where.setdefault(sid, (split, i))

    def ids(self, split: str | None = None) -> list[str]:
        if split is None:
            return list(self._where)
        return list(self.splits[split]["id"]) if split in self.splits else []

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, sample_id: str) -> dict:
        if sample_id not in self._where:
            raise UserError(f"sample {sample_id!r} is not in the dataset {self.name!r}")
        split, i = self._where[sample_id]
        return self.splits[split][i]

    def images(self, sample_id: str) -> list:
        """Original then A-D as RGB PIL images."""
        return sample_images(self.get(sample_id), "separate")


def read_mined_responses(path: str | os.PathLike) -> dict[str, str]:
    """Model responses by sample id from an HCM mining file (``hard_cases.jsonl``), when it has them."""
    path = Path(path)
    out: dict[str, str] = {}
    if path.suffix != ".jsonl":
        return out
    for sid, row in read_by_id(path).items():
        text = row.get("response") or row.get("raw_response") or row.get("prediction") or ""
        if isinstance(text, str) and text:
            out[str(sid)] = text
    return out


# ----------------------------------------------------------------------------- labels

def build_label(accepted: list[str] | None, tags: list[list[str] | None], flag: bool = False) -> dict:
    """Checkbox choices and per-candidate tags -> ``answer`` and ``candidate_defects`` for the store.

    ``accepted`` holds letters A-D and/or "N". Tags of accepted candidates are an error (an
    accepted candidate has no defect); rejected candidates without tags get "unspecified" when
    any candidate has tags, so the answer and the tags always agree. With nothing chosen the
    label must be flagged (a sample the annotator cannot decide).
    """
    accepted = [a for a in (accepted or []) if a]
    unknown = [a for a in accepted if a not in CHOICES]
    if unknown:
        raise UserError(f"unknown choice(s) {', '.join(map(str, unknown))}; use A, B, C, D or N")
    letters = "".join(sorted({a for a in accepted if a in LETTERS}))
    if NONE_CHOICE in accepted and letters:
        raise UserError(f"N (none acceptable) contradicts the accepted candidate(s) {letters}; untick one")
    tags = [list(t or []) for t in (tags or [[]] * 4)]
    if len(tags) != 4:
        raise UserError("defect tags: one list per candidate A-D")
    for letter, t in zip(LETTERS, tags):
        if letter in letters and t:
            raise UserError(f"candidate {letter} is ticked acceptable but has defect tags ({', '.join(t)}); remove one")
    if not letters and NONE_CHOICE not in accepted:
        if not flag:
            raise UserError("nothing chosen: tick the acceptable candidates (A-D) or N for none, or flag the sample")
        return {"answer": None, "candidate_defects": None}
    answer = letters or NONE_ANSWER
    if not any(tags):
        return {"answer": answer, "candidate_defects": None}
    defects = [[] if letter in letters else (sorted(set(t)) or [UNSPECIFIED_DEFECT]) for letter, t in zip(LETTERS, tags)]
    return {"answer": answer, "candidate_defects": defects}


def parse_key(key: str) -> tuple[str, str]:
    """``dataset/sample_id`` -> (dataset, sample_id)."""
    if not key or "/" not in key:
        raise UserError("no sample loaded: pick a queue and load an item first")
    dataset, sample_id = key.split("/", 1)
    return dataset, sample_id


def cot_provenance(cot: str, suggestion: str | None) -> str:
    """``none`` (no reasoning), ``model`` (a finished model suggestion accepted unedited) or ``human``."""
    if not (cot or "").strip():
        return "none"
    if suggestion and cot.strip() == suggestion.strip():
        return "model"
    return "human"


def save_label(store, annotator: str, key: str, accepted, tags, cot: str = "", flag: bool = False,
               seconds: float | None = None, suggestion: str | None = None) -> int:
    """Append a label event for ``annotator`` on sample ``key``; returns the event id.

    ``suggestion``: the finished model suggestion shown for this item, to tell accepted model
    text from the annotator's own (`cot_provenance`). The store refuses reasoning that
    contradicts the label (the message offers to save without it).
    """
    dataset, sample_id = parse_key(key)
    label = build_label(accepted, tags, flag)
    try:
        return store.add_label(
            annotator, dataset, sample_id, answer=label["answer"], candidate_defects=label["candidate_defects"],
            cot=cot or "", flag=bool(flag), seconds=seconds, cot_source=cot_provenance(cot or "", suggestion),
        )
    except StoreError as exc:
        raise UserError(str(exc)) from exc


def undo_label(store, annotator: str) -> str | None:
    """Retract the annotator's latest label; returns the sample key it was on (or None)."""
    key = store.undo(annotator)
    return None if key is None else f"{key.dataset}/{key.sample_id}"


def choices_of(event) -> tuple[list[str], list[list[str]]]:
    """Checkbox choices and tags that show an existing label event again."""
    if event is None or event.answer is None:
        return [], [[] for _ in LETTERS]
    accepted = [NONE_CHOICE] if event.answer == NONE_ANSWER else list(event.answer)
    defects = event.candidate_defects or [[] for _ in LETTERS]
    tags = [[t for t in d if t in DEFECT_TAGS] for d in defects]
    return accepted, tags


@dataclass
class ItemView:
    """What the Annotate tab shows for one queue item."""

    key: str
    images: list  # original, A, B, C, D (PIL)
    accepted: list[str]
    tags: list[list[str]]
    cot: str  # the annotator's own reasoning (their current label's), never model text
    suggestion: str  # a finished suggestion to show apart ("" : none yet; the app may ask the model)
    suggestion_source: str  # "mining", "dataset", ""
    flag: bool
    position: str
    others: dict[str, str] = field(default_factory=dict)  # other annotators' current answers (shown only when asked)

    def others_text(self) -> str:
        """Other annotators' answers, for the flagged and disagreements queues."""
        if not self.others:
            return ""
        return "others: " + ", ".join(f"{name} {answer}" for name, answer in sorted(self.others.items()))


def item_view(store, index: SampleIndex, annotator: str, key: str, position: str = "",
              mined: dict[str, str] | None = None, dataset_cot: bool = True, show_others: bool = False) -> ItemView:
    """The images, this annotator's current label (if any), their reasoning and a suggestion.

    The reasoning box holds only the annotator's own text. The suggestion, shown apart, is the
    mined model response, else (``dataset_cot``) the dataset's CoT; the app turns
    ``dataset_cot`` off when a model can write one, because a dataset CoT (e.g. the synthetic
    oracle's) gives the answer away. Other annotators' answers are filled only with
    ``show_others`` (and the store then records that this annotator saw them).
    """
    dataset, sample_id = parse_key(key)
    if dataset != index.name:
        raise UserError(f"sample {key!r} belongs to dataset {dataset!r}, but the app serves {index.name!r}")
    sample = index.get(sample_id)
    images = index.images(sample_id)
    mine = store.current_labels(dataset=dataset, sample_id=sample_id)
    event = next(iter(mine.values()), {}).get(annotator) if mine else None  # one sample: one entry
    accepted, tags = choices_of(event)
    cot = event.cot if event is not None else ""
    if mined and sample_id in mined:
        suggestion, source = mined[sample_id], "mining"
    elif dataset_cot and sample.get("cot"):
        suggestion, source = sample["cot"], "dataset"
    else:
        suggestion, source = "", ""
    others: dict[str, str] = {}
    if show_others:
        labels = next(iter(mine.values()), {}) if mine else {}
        others = {name: (ev.answer or "flagged") for name, ev in labels.items() if name != annotator}
        if others:
            store.record_reveal(annotator, dataset, sample_id)
    return ItemView(key, images, accepted, tags, cot, suggestion, source, bool(event and event.flag), position, others)


# ----------------------------------------------------------------------------- figures

PROGRESS_BARS = ("samples", "labelled", "unlabelled", "hard", "hard_labelled", "flagged", "disagreements")


def progress_figure(progress: dict, title: str = "Progress"):
    """Plotly bars of the store's progress counts (``store.progress``) and labels per annotator."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=("samples", "labels per annotator"))
    keys = [k for k in PROGRESS_BARS if isinstance(progress.get(k), int)]
    vals = [progress[k] for k in keys]
    fig.add_trace(go.Bar(x=keys, y=vals, text=vals, textposition="auto", marker_color="#3b6fb6", name="samples"), 1, 1)
    per = progress.get("per_annotator") or {}
    fig.add_trace(go.Bar(x=list(per), y=list(per.values()), text=list(per.values()), textposition="auto",
                         marker_color="#2f9e6e", name="annotators"), 1, 2)
    secs = progress.get("mean_seconds")
    extra = f" · {secs:.1f} s per label" if isinstance(secs, (int, float)) else ""
    fig.update_layout(title=title + extra, height=300, showlegend=False, margin=dict(l=30, r=10, t=60, b=30))
    return fig


def agreement_figure(agreement: dict, title: str = "Agreement"):
    """Fleiss' kappa per candidate and exact-answer agreement (from ``store.agreement``)."""
    kappa = agreement.get("kappa_per_candidate") or agreement.get("kappa") or {}
    if not isinstance(kappa, dict):
        kappa = {}
    xs = [str(k) for k in kappa]
    ys = [None if v is None else float(v) for v in kappa.values()]
    exact = agreement.get("exact_agreement")
    if exact is not None:
        xs.append("exact answer")
        ys.append(float(exact))
    fig = go.Figure(go.Bar(x=xs, y=ys, text=[("-" if v is None else f"{v:.2f}") for v in ys], textposition="auto",
                           marker_color="#7a4fb3"))
    n = agreement.get("n_samples", agreement.get("n"))
    fig.update_layout(title=f"{title}" + (f" ({n} samples with 2+ annotators)" if n is not None else ""),
                      height=280, margin=dict(l=30, r=10, t=40, b=30), yaxis=dict(range=[-1, 1]))
    return fig


# ----------------------------------------------------------------------------- login

ROLES = ("annotator", "reviewer", "admin")
REVIEW_ROLES = ("reviewer", "admin")  # see others' answers in the flagged / disagreements queues
ADMIN_ROLES = ("admin",)  # import hard cases, remove hard marks


@dataclass
class User:
    """One entry of the auth file: a scrypt hash (``""``: the store's password) and a role."""

    secret: str
    role: str = "annotator"


def _user(path, where: str, name: str, secret: str, role: str | None) -> User:
    role = (role or "annotator").strip() or "annotator"
    if role not in ROLES:
        raise ValueError(f"{path}{where}: unknown role {role!r} for {name!r}; expected one of {', '.join(ROLES)}")
    if secret and not secret.startswith("scrypt$"):
        raise ValueError(f"{path}{where}: {name!r} has a plain-text password; store a hash instead: "
                         f"labkit app adduser {name} --auth-file {path}")
    return User(secret, role)


def read_auth_file(path: str | os.PathLike) -> dict[str, User]:
    """Annotators, their password hashes and roles from ``name:hash[:role]`` lines or JSON.

    JSON: ``{"ana": "scrypt$..."}``, ``{"ana": {"password": "scrypt$...", "role": "admin"}}`` or
    ``[{"name": "ana", "password": "scrypt$...", "role": "reviewer"}, ...]``. A secret must be a
    ``scrypt$...`` hash (`labkit.store.hash_password`; write one with ``labkit app adduser``)
    or empty (then the password set in the store is checked). Raises ValueError naming the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"auth file {str(path)!r} does not exist")
    text = path.read_text()
    users: dict[str, User] = {}
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg})") from exc
        if isinstance(data, dict):
            data = [{"name": k, **(v if isinstance(v, dict) else {"password": v})} for k, v in data.items()]
        for n, entry in enumerate(data, 1):
            if not isinstance(entry, dict) or not entry.get("name", entry.get("username")):
                raise ValueError(f"{path}: entry {n} needs a 'name' (and 'password')")
            name = str(entry.get("name", entry.get("username"))).strip()
            users[name] = _user(path, f" entry {n}", name, str(entry.get("password") or ""), entry.get("role"))
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, rest = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"{path}:{lineno}: expected 'user:hash' or 'user:hash:role'")
            secret, _, role = rest.partition(":")
            users[name.strip()] = _user(path, f":{lineno}", name.strip(), secret.strip(), role)
    if not users:
        raise ValueError(f"{path}: no annotators")
    return users


def add_user(path: str | os.PathLike, name: str, password: str, role: str = "annotator") -> None:
    """Add or replace ``name`` in an auth file of ``name:hash:role`` lines (created with mode 0600)."""
    name = (name or "").strip()
    if not name or ":" in name or name.startswith("#"):
        raise ValueError(f"invalid user name {name!r} (not empty, no ':')")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if len(password or "") < 8:
        raise ValueError("password too short: use at least 8 characters")
    path = Path(path)
    lines = path.read_text().splitlines() if path.exists() else ["# labkit app auth file: name:scrypt-hash:role"]
    if lines and lines[0].strip().startswith(("{", "[")):
        raise ValueError(f"{path} is JSON; add_user writes name:hash:role lines (start a new file)")
    lines = [ln for ln in lines if ln.partition(":")[0].strip() != name]
    lines.append(f"{name}:{hash_password(password)}:{role}")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


class LoginLimiter:
    """Failed-login throttle: after ``max_failures`` failures for one name within ``window_s``,
    every attempt for that name (even a right password) is refused for ``lockout_s``; more than
    ``max_total`` failures within ``window_s`` across all names lock every name the same way."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, lockout_s: float = 60.0, max_total: int = 30):
        self.max_failures, self.window_s, self.lockout_s, self.max_total = max_failures, window_s, lockout_s, max_total
        self._failures: dict[str | None, list[float]] = {}
        self._locked_until: dict[str | None, float] = {}
        self._lock = threading.Lock()
        self.refused = 0  # attempts refused without checking the password

    def allowed(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if any(self._locked_until.get(k, 0.0) > now for k in (name, None)):
                self.refused += 1
                return False
            return True

    def failed(self, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key, limit in ((name, self.max_failures), (None, self.max_total)):
                recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
                self._failures[key] = recent
                if len(recent) >= limit:
                    self._locked_until[key] = now + self.lockout_s
                    self._failures[key] = []


def make_auth(users: dict[str, User], store, limiter: LoginLimiter | None = None) -> Callable[[str, str], bool]:
    """A Gradio ``auth`` callable: the user must be listed and not locked out (`LoginLimiter`);
    the password is checked against the file's scrypt hash or, with none there, the store's."""
    limiter = limiter or LoginLimiter()

    def auth(username: str, password: str) -> bool:
        name = (username or "").strip()
        if not limiter.allowed(name):
            return False
        ok = False
        if name in users and password:
            secret = users[name].secret
            ok = check_password(password, secret) if secret else (
                store.has_password(name) and store.verify_annotator(name, password))
        if not ok:
            limiter.failed(name)
        return ok

    auth.limiter = limiter  # type: ignore[attr-defined]
    return auth
