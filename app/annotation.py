"""Annotation handlers of the app (pure functions, no Gradio): dataset samples, labels in the
annotation store, what the Annotate tab shows, progress and agreement figures, login.

- `SampleIndex`: a dataset folder's samples by id; `read_mined_responses`: the model responses
  of an HCM mining file (``hard_cases.jsonl``), which prefill the reasoning of hard cases.
- `build_label`: checkboxes and tags -> a label the store accepts; `save_label`, `undo_label`.
- `item_view`: the images, the annotator's current label, the reasoning to prefill and the
  other annotators' answers for one queue item.
- `progress_figure`, `agreement_figure`: plotly figures of `AnnotationStore.progress` and
  `AnnotationStore.agreement`.
- `read_auth_file`, `make_auth`: the app's login (passwords checked against the file or the store).

Re-exported by `app.handlers`; tested in ``tests/test_app_handlers.py``.
"""
from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.handlers import UserError
from labkit.metrics import LETTERS, NONE_ANSWER

NONE_CHOICE = "N"
DEFECT_TAGS = ("appearance_deformation", "physical_shadow", "placement_layout", "extension_rationality")
UNSPECIFIED_DEFECT = "unspecified"  # a rejected candidate whose annotator gave no tag
CHOICES = list(LETTERS) + [NONE_CHOICE]


# ----------------------------------------------------------------------------- dataset samples

class SampleIndex:
    """Samples of a dataset folder by id (all splits), decoded on demand.

    ``name`` is the dataset's name in the annotation store (`labkit.store.dataset_name`).
    """

    def __init__(self, root: str | os.PathLike):
        from labkit.data import list_splits, load_split
        from labkit.store import dataset_name

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
        from labkit.data import sample_images

        return sample_images(self.get(sample_id), "separate")


def read_mined_responses(path: str | os.PathLike) -> dict[str, str]:
    """Model responses by sample id from an HCM mining file (``hard_cases.jsonl``), when it has them."""
    from labkit.jsonl import read_by_id

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


def save_label(store, annotator: str, key: str, accepted, tags, cot: str = "", flag: bool = False,
               seconds: float | None = None) -> int:
    """Append a label event for ``annotator`` on sample ``key``; returns the event id."""
    from labkit.store import StoreError

    dataset, sample_id = parse_key(key)
    label = build_label(accepted, tags, flag)
    try:
        return store.add_label(
            annotator, dataset, sample_id, answer=label["answer"], candidate_defects=label["candidate_defects"],
            cot=cot or "", flag=bool(flag), seconds=seconds,
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
    cot: str
    cot_source: str  # "your label", "mining", "dataset", "" (none: ask the model)
    flag: bool
    position: str
    others: dict[str, str] = field(default_factory=dict)  # other annotators' current answers

    def others_text(self) -> str:
        """Other annotators' answers, for the flagged and disagreements queues."""
        if not self.others:
            return ""
        return "others: " + ", ".join(f"{name} {answer}" for name, answer in sorted(self.others.items()))


def item_view(store, index: SampleIndex, annotator: str, key: str, position: str = "",
              mined: dict[str, str] | None = None, dataset_cot: bool = True) -> ItemView:
    """The images, this annotator's current label (if any) and the CoT to prefill.

    The CoT is the annotator's own, else the mined model response, else (``dataset_cot``) the
    dataset's CoT; the app turns ``dataset_cot`` off when a model can write one, because a
    dataset CoT (e.g. the synthetic oracle's) gives the answer away.
    """
    dataset, sample_id = parse_key(key)
    if dataset != index.name:
        raise UserError(f"sample {key!r} belongs to dataset {dataset!r}, but the app serves {index.name!r}")
    sample = index.get(sample_id)
    images = index.images(sample_id)
    mine = store.current_labels(dataset=dataset, sample_id=sample_id)
    event = next(iter(mine.values()), {}).get(annotator) if mine else None  # one sample: one entry
    accepted, tags = choices_of(event)
    if event is not None and event.cot:
        cot, source = event.cot, "your label"
    elif mined and sample_id in mined:
        cot, source = mined[sample_id], "mining"
    elif dataset_cot and sample.get("cot"):
        cot, source = sample["cot"], "dataset"
    else:
        cot, source = "", ""
    labels = next(iter(mine.values()), {}) if mine else {}
    others = {name: (ev.answer or "flagged") for name, ev in labels.items() if name != annotator}
    return ItemView(key, images, accepted, tags, cot, source, bool(event and event.flag), position, others)


# ----------------------------------------------------------------------------- figures

PROGRESS_BARS = ("samples", "labelled", "unlabelled", "hard", "hard_labelled", "flagged", "disagreements")


def progress_figure(progress: dict, title: str = "Progress"):
    """Plotly bars of the store's progress counts (``store.progress``) and labels per annotator."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

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
    import plotly.graph_objects as go

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

def read_auth_file(path: str | os.PathLike) -> dict[str, str]:
    """Annotators and their secrets from a JSON file or ``user:password`` lines.

    JSON: ``{"ana": "pw", ...}`` or ``[{"name": "ana", "password": "pw"}, ...]``. A secret may
    be a plain password, a ``scrypt$...`` hash (`labkit.store.hash_password`), or empty: then
    the password set in the store is checked. Raises ValueError naming the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"auth file {str(path)!r} does not exist")
    text = path.read_text()
    users: dict[str, str] = {}
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg})") from exc
        if isinstance(data, dict):
            data = [{"name": k, "password": v} for k, v in data.items()]
        for n, entry in enumerate(data, 1):
            if not isinstance(entry, dict) or not entry.get("name", entry.get("username")):
                raise ValueError(f"{path}: entry {n} needs a 'name' (and 'password')")
            users[str(entry.get("name", entry.get("username"))).strip()] = str(entry.get("password") or "")
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, secret = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"{path}:{lineno}: expected 'user:password'")
            users[name.strip()] = secret
    if not users:
        raise ValueError(f"{path}: no annotators")
    return users


def make_auth(users: dict[str, str], store) -> Callable[[str, str], bool]:
    """A Gradio ``auth`` callable: the user must be listed; the password is checked against the
    file's secret (plain or scrypt hash) or, with no secret there, the store's hash."""
    from labkit.store import check_password

    def auth(username: str, password: str) -> bool:
        name = (username or "").strip()
        if name not in users or not password:
            return False
        secret = users[name]
        if secret.startswith("scrypt$"):
            return check_password(password, secret)
        if secret:
            return hmac.compare_digest(secret.encode(), password.encode())
        return store.has_password(name) and store.verify_annotator(name, password)

    return auth
