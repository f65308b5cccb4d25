"""Pure handler functions of the app: everything the UI does, without Gradio.

The UI (`app.ui`) only wires components to these functions and turns `UserError` into a
visible message. Tests call them directly (``tests/test_app_handlers.py``).

- Screening: `read_upload` (an uploaded file as Gradio hands it over -> RGB image, clear error
  otherwise), `collect_images` (exactly five), `Screener` (the model, loaded once, with a lock)
  and `screen_stream` (yields the growing reasoning, the parsed answer and per-candidate views).
- Reasoning per candidate: `split_reasoning` cuts a chain of thought into the parts about
  A, B, C and D; `verdicts` marks each candidate accepted or rejected from the parsed answer.
- Annotation: `SampleIndex` (a dataset folder's samples by id), `build_label` (checkboxes and
  tags -> a label the store accepts), `save_label`, `undo_label`, `item_view`, and the plotly
  figures `progress_figure` and `agreement_figure`.
- Login: `read_auth_file` and `make_auth` (passwords checked against the file or the store).
"""
from __future__ import annotations

import hmac
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from labkit.metrics import LETTERS, NONE_ANSWER, parse_answer

NONE_CHOICE = "N"
DEFECT_TAGS = ("appearance_deformation", "physical_shadow", "placement_layout", "extension_rationality")
UNSPECIFIED_DEFECT = "unspecified"  # a rejected candidate whose annotator gave no tag
CHOICES = list(LETTERS) + [NONE_CHOICE]
WHAT = ("original image", "candidate A", "candidate B", "candidate C", "candidate D")


class UserError(ValueError):
    """Bad input from the person using the app; the UI shows the message and keeps serving."""


# ----------------------------------------------------------------------------- uploads

def upload_path(value: Any) -> str | None:
    """The server-side path of an upload as Gradio hands it over (a path or a FileData dict).

    Only Gradio's own upload cache paths reach here: Gradio checks that a client-sent file is in
    its upload folder before calling a handler, and the app never takes a path from a textbox.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("path")
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    return None


def read_upload(value: Any, what: str = "image"):
    """An uploaded image as RGB PIL; raises UserError naming the image and the problem.

    Accepts a PIL image (dataset samples), a path or a Gradio FileData dict. Corrupt and
    non-image files, images over PIL's decompression-bomb limit and tiny images are refused.
    """
    from PIL import Image

    from labkit.data import SampleError, open_image

    if value is None:
        raise UserError(f"{what} is missing: upload it (five images are needed: the original and A-D)")
    if not isinstance(value, Image.Image):
        path = upload_path(value)
        if not path:
            raise UserError(f"{what}: not an uploaded file")
        value = path
    try:
        return open_image(value, what=what, sample_id="upload")
    except SampleError as exc:
        # The problem already names the image; keep Gradio's cache path out of the message.
        problem = exc.problem.replace(str(value), "the uploaded file") if isinstance(value, str) else exc.problem
        raise UserError(problem) from exc


def collect_images(original, a, b, c, d) -> list:
    """The five images in order, each checked; every problem is named in one message."""
    values = [original, a, b, c, d]
    missing = [w for w, v in zip(WHAT, values) if v is None]
    if missing:
        raise UserError(
            f"{len(values) - len(missing)} of 5 images given; missing: {', '.join(missing)}. "
            "Upload the original and all four candidates A-D."
        )
    images, problems = [], []
    for what, value in zip(WHAT, values):
        try:
            images.append(read_upload(value, what))
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise UserError("; ".join(problems))
    return images


# ----------------------------------------------------------------------------- the model

@dataclass
class Screener:
    """A model and its processor, loaded once; generation is serialised by a lock."""

    model: Any
    processor: Any
    name: str = "model"
    max_new_tokens: int = 256
    layout: str = "separate"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path, **kw) -> "Screener":
        from labkit.models import load

        model, processor = load(path)
        return cls(model, processor, name=Path(str(path)).name, **kw)

    def stream(self, images: list, form: str = "cot", variant: str = "train") -> Iterator[str]:
        """Yield the response as it grows (each item: the whole text so far)."""
        from labkit.data import sample_images
        from labkit.evaluate import stream_response
        from labkit.prompts import screening_prompt

        prompt = screening_prompt(form, self.layout, variant)
        model_images = sample_images({"id": "upload", "original": images[0], "candidates": images[1:]}, self.layout)
        # One generation at a time: two interleaved generate() calls would only share 2 cores.
        with self.lock:
            yield from stream_response(self.model, self.processor, model_images, prompt,
                                       max_new_tokens=self.max_new_tokens)


# ----------------------------------------------------------------------------- reasoning per candidate

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
# Where the reasoning about one candidate starts: "A:", "A)", "(A)", "Image A", "candidate B is",
# "C -", "D looks". The letter must be a capital standing alone.
_MARKER = re.compile(
    r"(?:^|(?<=[\s.;,(\[>]))"
    r"(?:(?:image|candidate|option|picture)\s+\(?(?P<l1>[A-D])\)?(?![A-Za-z0-9])"
    r"|\(?(?P<l2>[A-D])\)?(?=\s*[:)\-–—]|\s+(?:is|has|keeps|looks|shows|fails|passes|meets|changes|adds|"
    r"stands|floats|sinks|loses|matches|was|seems|appears|contains|differs)\b))",
    re.IGNORECASE,
)


# A closing summary ("The acceptable images are B and D, so the answer is BD.") is about all
# candidates: it is cut from the last candidate's part.
_CONCLUSION = re.compile(
    r"(?:^|(?<=[.!?;]\s))(?:the acceptable|so the answer|the answer|therefore|thus|in summary|overall|"
    r"none of the|no candidate|all four|every candidate)\b",
    re.IGNORECASE,
)


def reasoning_text(response: str) -> str:
    """The reasoning part of a response: inside <think>, or everything before <answer>."""
    m = _THINK.search(response or "")
    if m:
        return m.group(1).strip()
    return re.split(r"<answer>", response or "", flags=re.IGNORECASE)[0].strip()


def split_reasoning(response: str) -> dict[str, str]:
    """The reasoning about each candidate, keyed A-D ('' when the text says nothing about it).

    The text from the first mention of a candidate ("A:", "Image B", "C is ...") up to the next
    candidate's mention belongs to it; text before the first mention and a closing summary
    after the last candidate are left out. Works on a partial (still streaming) response too.
    """
    text = reasoning_text(response)
    starts: dict[str, int] = {}
    for m in _MARKER.finditer(text):
        letter = (m.group("l1") or m.group("l2") or "")
        if not letter.isupper() and m.group("l2"):
            continue  # a lowercase "a is" is an article, not candidate A
        letter = letter.upper()
        if letter and letter not in starts:
            starts[letter] = m.start()
    order = sorted(starts.items(), key=lambda kv: kv[1])
    out = {letter: "" for letter in LETTERS}
    for i, (letter, start) in enumerate(order):
        if i + 1 < len(order):
            end = order[i + 1][1]
        else:
            summary = _CONCLUSION.search(text, start + 1)
            end = summary.start() if summary else len(text)
        out[letter] = text[start:end].strip()
    return out


def verdicts(answer: str | None) -> dict[str, str]:
    """Per candidate: "accepted", "rejected", or "unknown" when no valid answer was parsed."""
    if answer is None:
        return {letter: "unknown" for letter in LETTERS}
    return {letter: ("accepted" if letter in answer else "rejected") for letter in LETTERS}


_BADGE = {
    "accepted": ("✅ accepted", "#0a7d32"),
    "rejected": ("❌ rejected", "#b3261e"),
    "unknown": ("… waiting for the answer", "#666666"),
    "invalid": ("⚠️ no valid answer", "#9a6700"),
}


def candidate_markdown(letter: str, verdict: str, reasoning: str) -> str:
    """Markdown beside candidate ``letter``: its verdict and the reasoning about it."""
    label, colour = _BADGE[verdict]
    body = reasoning if reasoning else "_(the reasoning does not mention this candidate)_"
    return f"### {letter}: <span style='color:{colour}'>{label}</span>\n\n{body}"


@dataclass
class ScreenResult:
    """One step of a streaming screening: everything the Screen tab shows."""

    reasoning: str
    answer: str | None
    done: bool
    per_candidate: dict[str, str]  # letter -> markdown
    status: str

    def answer_text(self) -> str:
        if self.answer is None:
            return "(no valid answer)" if self.done else ""
        return self.answer


def screen_step(response: str, done: bool, elapsed: float, first_token_s: float | None) -> ScreenResult:
    """The view of a (partial) response."""
    answer = parse_answer(response) if done else None
    parts = split_reasoning(response)
    if done:
        marks = verdicts(answer) if answer is not None else {letter: "invalid" for letter in LETTERS}
    else:
        marks = {letter: "unknown" for letter in LETTERS}
    per = {letter: candidate_markdown(letter, marks[letter], parts[letter]) for letter in LETTERS}
    if done:
        summary = (
            "none acceptable (N)" if answer == NONE_ANSWER
            else f"acceptable: {', '.join(answer)}" if answer else "the response holds no valid answer"
        )
        ttft = f", first token after {first_token_s:.2f} s" if first_token_s is not None else ""
        status = f"Done in {elapsed:.2f} s{ttft}: {summary}."
    else:
        status = f"Reasoning… {elapsed:.1f} s"
    return ScreenResult(response, answer, done, per, status)


def screen_stream(screener: Screener, images: list, form: str = "cot") -> Iterator[ScreenResult]:
    """Stream a screening: an empty view, one `ScreenResult` per new token, then the final one.

    A model failure raises RuntimeError with the cause; the caller shows it and keeps serving.
    """
    if form not in ("cot", "direct"):
        raise UserError(f"unknown prompt form {form!r}; choose cot or direct")
    t0 = time.perf_counter()
    first = None
    response = ""
    yield screen_step(response, False, 0.0, None)
    try:
        for text in screener.stream(images, form):
            if not text:
                continue
            if first is None:
                first = time.perf_counter() - t0
            response = text
            yield screen_step(response, False, time.perf_counter() - t0, first)
    except UserError:
        raise
    except Exception as exc:
        raise RuntimeError(f"the model failed: {type(exc).__name__}: {exc}") from exc
    yield screen_step(response, True, time.perf_counter() - t0, first)


def throttle(steps: Iterator[ScreenResult], interval: float) -> Iterator[ScreenResult]:
    """Pass on the first step, then at most one step per ``interval`` seconds, and always the last
    (the final answer). Each passed step holds the whole text so far, so nothing is lost."""
    last = None
    pending = None
    for step in steps:
        now = time.perf_counter()
        if step.done or last is None or now - last >= interval:
            last, pending = now, None
            yield step
        else:
            pending = step
    if pending is not None:
        yield pending


def image_file(img, folder: str | os.PathLike) -> str:
    """Save an image as PNG named by its content hash (atomically; kept when it exists) and
    return the path.

    The app hands Gradio these paths instead of PIL images: Gradio 6.31 rewrites the cache file
    of a returned PIL image in place, so two requests showing the same image at once could send
    a half-written file to a browser (seen as "Too much data for declared Content-Length").
    Gradio copies a returned *path* into its cache with an atomic rename.
    """
    import hashlib
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


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
    path = Path(path)
    out: dict[str, str] = {}
    if path.suffix != ".jsonl":
        return out
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "id" in row:
            text = row.get("response") or row.get("raw_response") or row.get("prediction") or ""
            if isinstance(text, str) and text:
                out[str(row["id"])] = text
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
