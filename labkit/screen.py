"""Batch screening of unlabelled work: which generated candidates of each item are acceptable.

Input, one of (`collect_items`):

- a folder of items, one sub-folder per item holding ``original.*`` and ``A.*`` … ``D.*``
  (any image type PIL reads; names are case-insensitive);
- a manifest, ``.csv`` or ``.jsonl``, with columns ``id, original, A, B, C, D`` (paths relative
  to the manifest's folder);
- a dataset folder (`labkit.data` layout) and a split, e.g. the ``exploration`` split that
  ``labkit generate`` writes; labels, if any, are copied to the output as ``label``.

`screen` shows each item to a local model (`labkit.infer.generate_responses`, batched,
with the evaluator's prompt: `labkit.data.screening_message`) or to a judge
(`labkit.judges`, e.g. an OpenAI-compatible endpoint) and writes to ``out_dir``:

- ``predictions.jsonl``: per item ``id``, ``response``, ``answer`` (parsed; None when the reply
  has no answer), ``accepted``/``rejected`` letters, ``verdicts`` (what the reasoning says about
  each candidate, `labkit.verdicts.parse_verdicts`), ``p_ok`` (local models: P(ok) at each
  verdict), ``files`` and timing (``seconds`` per item, ``batch_seconds``);
- ``skipped.jsonl``: items that could not be screened (a missing or unreadable file, a failed
  judge request), each with its problem; also printed as they happen;
- ``gallery.html`` with ``thumbs/``: one row per item, the five thumbnails, accepted candidates
  framed green and rejected red, the reasoning folded under the row.

A rerun with the same ``out_dir`` and settings skips the items already in ``predictions.jsonl``
(skipped items are tried again). The prompt settings default to the model's training recipe
(``final/labkit_train.json``), so a screener is asked the way it was trained.

Run ``labkit screen ITEMS --model runs/small/sft/final --out screened/``.
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit.conversions import sample_images, screening_message
from labkit.data import SampleError, list_splits, load_split, open_image
from labkit.infer import DEFAULT_MAX_NEW_TOKENS, generate_responses, open_predictions
from labkit.judges import make_judge
from labkit.jsonl import append_rows, read_rows, write_atomic
from labkit.metrics import LETTERS, NONE_ANSWER, parse_answer
from labkit.models import load
from labkit.prompts import screening_prompt
from labkit.verdicts import parse_verdicts

ROLES = ("original", *LETTERS)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
THUMB_SIDE = 160
# Settings that must match for a resumed run to mix with the predictions already written.
SCREEN_KEYS = ("model", "judge", "input", "split", "form", "layout", "variant", "image_size", "prompt",
               "max_new_tokens")
DEFAULT_CONVERSION = {"form": "cot", "layout": "separate", "variant": "train", "image_size": None, "prompt": "full"}


@dataclass
class Item:
    """One item to screen: its id and a loader of the five images (original, A-D), or a problem."""

    id: str
    load: Callable[[], list] | None = None
    files: dict[str, str] | None = None
    problem: str | None = None
    label: str | None = None


# ----------------------------------------------------------------------------- inputs

def _open_files(sid: str, files: dict[str, str]) -> list:
    return [open_image(files[role], sid, f"{'original image' if role == 'original' else 'candidate ' + role} ({files[role]})")
            for role in ROLES]


def find_item_files(folder: Path) -> tuple[dict[str, str] | None, str | None]:
    """The five image files of one item folder by role, or None and the problem."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            role = next((r for r in ROLES if r.lower() == path.stem.lower()), None)
            if role:
                found.setdefault(role, []).append(path)
    missing = [r for r in ROLES if r not in found]
    if missing:
        return None, f"no file for {', '.join(missing)} (expected original.png and A.png ... D.png, any image type)"
    twice = [r for r in ROLES if len(found[r]) > 1]
    if twice:
        return None, "more than one file for " + ", ".join(f"{r} ({', '.join(p.name for p in found[r])})" for r in twice)
    return {r: str(found[r][0]) for r in ROLES}, None


def item_folders(root: str | os.PathLike) -> list[Path]:
    """The item sub-folders of ``root`` (sorted by name; hidden ones skipped); none is an error."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FileNotFoundError(f"no item folders in {str(root)!r}; expected ITEM/original.png and ITEM/A.png ... ITEM/D.png")
    return folders


def items_from_folder(root: str | os.PathLike) -> list[Item]:
    """One item per sub-folder of ``root`` (sorted by name)."""
    return [_file_item(folder.name, *find_item_files(folder)) for folder in item_folders(root)]


def _file_item(sid: str, files: dict[str, str] | None, problem: str | None = None) -> Item:
    if problem:
        return Item(sid, problem=problem)
    return Item(sid, load=lambda: _open_files(sid, files), files=files)


def read_records(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV (header line) or JSON Lines file, as dicts."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return read_rows(path, missing_ok=False)
    raise ValueError(f"{path}: expected a .csv or .jsonl manifest")


def manifest_rows(path: Path, expected: str = "id, original, A, B, C, D") -> list[dict]:
    """The rows of a CSV/JSONL manifest that names the five files of each item; an error names
    the file when it has no rows or lacks a column (``expected``: the columns it should have)."""
    rows = read_records(path)
    if not rows:
        raise ValueError(f"{path}: the manifest has no rows")
    missing = [c for c in ("id", *ROLES) if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {', '.join(missing)}; expected {expected}")
    return rows


def items_from_manifest(path: str | os.PathLike) -> list[Item]:
    """Items named by a CSV/JSONL manifest with columns id, original, A, B, C, D."""
    path = Path(path)
    rows = manifest_rows(path)
    items = []
    for row in rows:
        sid = str(row["id"])
        files = {r: str(path.parent / str(row[r])) for r in ROLES if row.get(r)}
        gone = [r for r in ROLES if r not in files or not Path(files[r]).is_file()]
        named = ", ".join(f"{r} ({row.get(r) or 'empty'})" for r in gone)
        problem = f"missing file for {named}" if gone else None
        items.append(_file_item(sid, files, problem))
    return items


def items_from_dataset(root: str | os.PathLike, split: str) -> list[Item]:
    """Items of a dataset split (rows are not validated up front: a bad one is skipped, not fatal)."""
    from datasets import Image, List

    ds = load_split(root, split, validate=False)
    raw = ds.cast_column("original", Image(decode=False)).cast_column("candidates", List(Image(decode=False)))

    def loader(i, sid):
        def load():
            row = raw[i]
            cands = row["candidates"] or []
            if len(cands) != 4:
                raise SampleError(sid, f"expected exactly 4 candidates (A-D), got {len(cands)}")
            return [open_image(row["original"], sid, "original image")] + [
                open_image(c, sid, f"candidate {letter}") for letter, c in zip(LETTERS, cands)]
        return load

    return [Item(str(sid), load=loader(i, sid), label=answer)
            for i, (sid, answer) in enumerate(zip(ds["id"], ds["answer"]))]


def collect_items(source: str | os.PathLike, split: str = "exploration") -> tuple[list[Item], str]:
    """Items of a folder, manifest or dataset (see the module docstring) and the kind found."""
    source = Path(source)
    if source.is_file():
        return items_from_manifest(source), "manifest"
    if not source.is_dir():
        raise FileNotFoundError(f"{str(source)!r} does not exist (give an items folder, a manifest or a dataset folder)")
    if list_splits(source):
        return items_from_dataset(source, split), "dataset"
    return items_from_folder(source), "folder"


# ----------------------------------------------------------------------------- screening

def default_conversion(model) -> dict:
    """The prompt settings a trained folder was trained with (its recipe), else the lab's defaults."""
    info = Path(str(model or "")) / "labkit_train.json"
    conv = dict(DEFAULT_CONVERSION)
    if model and info.exists():
        recipe_conv = json.loads(info.read_text()).get("recipe", {}).get("conversion", {})
        conv.update({k: v for k, v in recipe_conv.items() if k in conv})
    return conv


def result_row(item: Item, response: str, p_ok=None, seconds: float | None = None, batch_seconds: float | None = None) -> dict:
    """One predictions.jsonl line."""
    answer = parse_answer(response)
    accepted = None if answer is None else ([] if answer == NONE_ANSWER else list(answer))
    row = {
        "id": item.id,
        "response": response,
        "answer": answer,
        "accepted": accepted,
        "rejected": None if accepted is None else [letter for letter in LETTERS if letter not in accepted],
        "verdicts": parse_verdicts(response),
        "files": item.files,
        "seconds": seconds,
        "batch_seconds": batch_seconds,
    }
    if p_ok is not None:
        row["p_ok"] = p_ok
    if item.label is not None:
        row["label"] = item.label
    return row


def safe_name(sid: str) -> str:
    """A file name made from an item id (letters, digits, . _ - kept)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", sid)[:120] or "item"


def write_thumbs(out_dir: Path, sid: str, images: list) -> None:
    folder = out_dir / "thumbs" / safe_name(sid)
    folder.mkdir(parents=True, exist_ok=True)
    for role, img in zip(ROLES, images):
        thumb = img.copy()
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        thumb.save(folder / f"{role}.jpg", quality=85)


def _warn(item_id: str, problem: str) -> None:
    print(f"skipped {item_id}: {problem}", file=sys.stderr)


def _load_batch(items: list[Item], conv: dict, out_dir: Path, skipped: list[dict], bar) -> tuple[list[Item], list]:
    """The items that load (with their thumbnails written) and the images shown for each.

    An item that does not load goes to ``skipped`` with its problem (printed as it happens).
    """
    batch, inputs = [], []
    for item in items:
        try:
            if item.problem:
                raise SampleError(item.id, item.problem)
            images = item.load()
            shown = sample_images({"id": item.id, "original": images[0], "candidates": images[1:]},
                                  conv["layout"], conv["image_size"])
        except SampleError as exc:
            skipped.append({"id": item.id, "problem": exc.problem})
            _warn(item.id, exc.problem)
            bar.update(1)
            continue
        write_thumbs(out_dir, item.id, images)
        batch.append(item)
        inputs.append(shown)
    return batch, inputs


def screen(
    items: list[Item],
    out_dir: str | os.PathLike,
    *,
    model=None,
    judge=None,
    input_name: str = "",
    split: str | None = None,
    form: str | None = None,
    layout: str | None = None,
    variant: str | None = None,
    image_size: int | None = None,
    prompt: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: bool = True,
    device=None,
) -> dict:
    """Screen ``items`` with a model (folder / hub alias / loaded ``(model, processor)``) or a judge.

    Prompt settings left None come from the model's recipe (`default_conversion`). Returns
    counts (``items``, ``screened`` this run, ``resumed``, ``skipped``), ``wall_s``,
    ``items_per_s`` and the output paths.
    """
    from tqdm.auto import tqdm

    if (model is None) == (judge is None):
        raise ValueError("screen needs a model or a judge (one of them)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"item id {dup!r} appears twice; ids must be unique")
    conv = default_conversion(model if isinstance(model, (str, os.PathLike)) else None)
    conv.update({k: v for k, v in dict(form=form, layout=layout, variant=variant, image_size=image_size, prompt=prompt).items()
                 if v is not None})
    text = screening_prompt(conv["form"], conv["layout"], conv["variant"], conv["prompt"])
    message = screening_message(conv["layout"], text)

    if isinstance(judge, str):
        judge = make_judge(judge)
    model_name = None
    processor = None
    if model is not None:
        if isinstance(model, (tuple, list)):
            model, processor = model
            model_name = getattr(model, "name_or_path", None) or type(model).__name__
        else:
            model_name = str(Path(model).resolve()) if Path(str(model)).is_dir() else str(model)
    settings = dict(model=model_name, judge=getattr(judge, "spec", None), input=input_name, split=split,
                    max_new_tokens=max_new_tokens, batch_size=batch_size, **conv)
    out_dir = Path(out_dir)
    pred_path, done = open_predictions(out_dir, settings, keys=SCREEN_KEYS)
    todo = [it for it in items if it.id not in done]
    if todo and processor is None and judge is None:
        model, processor = load(model, device=device)  # only when there is work: a finished run resumes at once
    skipped: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="screen", unit="item", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch, inputs = _load_batch(todo[start:start + batch_size], conv, out_dir, skipped, bar)
        if not batch:
            continue
        t_batch = time.perf_counter()
        p_ok = [None] * len(batch)
        if judge is not None:
            replies = judge.complete_many([([message], shown) for shown in inputs], progress=False, return_exceptions=True)
        else:
            replies, p_ok = generate_responses(model, processor, [(shown, message) for shown in inputs],
                                               batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False,
                                               verdicts=True)
        batch_s = time.perf_counter() - t_batch
        rows = []
        for item, reply, p in zip(batch, replies, p_ok):
            if isinstance(reply, BaseException):
                problem = f"judge request failed ({type(reply).__name__}: {reply})"
                skipped.append({"id": item.id, "problem": problem})
                _warn(item.id, problem)
                continue
            rows.append(result_row(item, getattr(reply, "text", reply) or "", p, batch_s / len(batch), batch_s))
        append_rows(pred_path, rows)  # once per batch, fsynced: an interruption loses at most a batch
        done.update({r["id"]: r for r in rows})
        bar.update(len(batch))
    bar.close()
    wall = time.perf_counter() - t0
    write_atomic(out_dir / "skipped.jsonl", skipped)
    new = len(todo) - len(skipped)
    gallery = write_gallery(out_dir, items, done, {s["id"]: s["problem"] for s in skipped}, title=model_name or settings["judge"])
    summary = {
        "items": len(items), "screened": new, "resumed": len(items) - len(todo), "skipped": len(skipped),
        "accepted_any": sum(bool(done[i]["accepted"]) for i in ids if i in done),
        "unparsed": sum(done[i]["answer"] is None for i in ids if i in done),
        "wall_s": wall, "items_per_s": new / wall if new and wall > 0 else None,
        "predictions_path": str(pred_path), "gallery_path": str(gallery), "skipped_path": str(out_dir / "skipped.jsonl"),
    }
    if judge is not None and hasattr(judge, "stats"):
        summary["judge"] = judge.stats.as_dict()
    return summary


# ----------------------------------------------------------------------------- gallery

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.item{border-bottom:1px solid #ddd;padding:.8em 0}
.head{font-weight:600;margin-bottom:.4em}
.row{display:flex;gap:10px;flex-wrap:wrap}
figure{margin:0;text-align:center;font-size:.85em}
figure img{display:block;width:160px;height:160px;object-fit:contain;background:#f4f4f4;border:4px solid #bbb}
figure.accepted img{border-color:#1a8f2e} figure.rejected img{border-color:#c0392b}
figure.accepted figcaption{color:#1a8f2e} figure.rejected figcaption{color:#c0392b}
.skip{color:#c0392b} pre{white-space:pre-wrap;background:#f8f8f8;padding:.6em;max-width:60em}
"""


def write_gallery(out_dir: Path, items: list[Item], rows: dict[str, dict], problems: dict[str, str], title=None) -> Path:
    """``gallery.html``: one row per item in input order (thumbnails from ``thumbs/``)."""
    from html import escape

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Screening: {escape(str(title or ''))}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Screening results</h1><p>{escape(str(title or ''))}: {len(rows)} screened, {len(problems)} skipped, "
             f"{len(items)} items. Green frame: accepted; red: rejected; grey: no parsed answer.</p>"]
    for item in items:
        sid = escape(item.id)
        if item.id not in rows:
            problem = problems.get(item.id, "not screened yet")
            parts.append(f"<div class='item' id='{sid}'><div class='head'>{sid}</div><div class='skip'>skipped: "
                         f"{escape(problem)}</div></div>")
            continue
        row = rows[item.id]
        accepted = row.get("accepted")
        verdict = ("no parsed answer" if accepted is None else
                   ("none acceptable" if not accepted else "accepted: " + ", ".join(accepted)))
        figures = []
        for role in ROLES:
            cls, cap = "", "Original"
            if role != "original":
                state = None if accepted is None else role in accepted
                cls = {True: "accepted", False: "rejected", None: ""}[state]
                said = (row.get("verdicts") or {}).get(role)
                cap = f"{role}: " + {True: "accepted", False: "rejected", None: "?"}[state]
                if said is not None:
                    cap += f" (reasoning: {'ok' if said else 'no'})"
            src = f"thumbs/{safe_name(item.id)}/{role}.jpg"
            figures.append(f"<figure class='{cls}'><img loading='lazy' src='{escape(src)}' alt='{sid} {role}'>"
                           f"<figcaption>{escape(cap)}</figcaption></figure>")
        label = f" &middot; label: {escape(row['label'])}" if row.get("label") else ""
        parts.append(f"<div class='item' id='{sid}'><div class='head'>{sid} &middot; {escape(verdict)}{label}</div>"
                     f"<div class='row'>{''.join(figures)}</div>"
                     f"<details><summary>reasoning</summary><pre>{escape(row.get('response') or '')}</pre></details></div>")
    parts.append("</body></html>")
    path = out_dir / "gallery.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
