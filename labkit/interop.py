"""Bring a team's own labelled screening data in, and send work to Label Studio and back.

Import (`import_records`, ``labkit import --from FORMAT SRC --out DATASET``) reads

- ``csv`` / ``jsonl``: one row per item with ``id``, ``original``, ``A`` … ``D`` (image paths,
  relative to the file's folder) and labels: ``answer`` (acceptable letters, ``N`` for none),
  per-candidate defect tags (``defects_A`` … ``defects_D``, tags separated by ``;``, or
  ``candidate_defects`` as a JSON list of four lists), optional ``dimension``, ``split``,
  ``caption``, ``cot``;
- ``folder``: the item folders `labkit screen` reads (``ITEM/original.*``, ``ITEM/A.*`` …),
  labels from ``labels.csv`` or ``labels.jsonl`` at the top (columns as above, without paths);
- ``label-studio``: Label Studio's JSON export of a project set up with `export_label_studio`'s
  labelling config (the last non-cancelled annotation of each task counts).

Every row becomes a schema sample with ``source=user`` and is validated (images decoded); all
problems are listed at once and nothing is written unless every row is valid (or
``skip_invalid``). The answer follows from the defect tags when only those are given; the
dimension is derived when the tags name a single one (none: ``normal``).

Export (`export_label_studio`, ``labkit export --to label-studio DATASET --split S --out
tasks.json``) writes the split's images under ``tasks_images/``, Label Studio tasks that point
at them as local-file URLs (``/data/local-files/?d=PATH`` relative to the document root, by
default the folder of ``tasks.json``: start Label Studio with
``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` set to it), the existing labels as predictions, and
``label_config.xml`` beside them: a multiple choice of the acceptable candidates (or ``N``), the
per-candidate defect tags and the dimension.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from labkit.data import (
    DEFECT_DIMENSIONS, DIMENSIONS, SampleError, list_splits, load_split, open_image, save_split, validate_sample,
)
from labkit.metrics import LETTERS, NONE_ANSWER, AnswerError, canonical_answer
from labkit.screen import ROLES, find_item_files, item_folders, manifest_rows, read_records, safe_name
from labkit.validate import Problem

FORMATS = ("folder", "csv", "jsonl", "label-studio")
LOCAL_FILES_PREFIX = "/data/local-files/?d="
CONFIG_NAME = "label_config.xml"
ACCEPTABLE, DIMENSION = "acceptable", "dimension"


# ----------------------------------------------------------------------------- labels

def _tags(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(t).strip() for t in value if str(t).strip()]
    return [t.strip() for t in str(value).split(";") if t.strip()]


def derive_dimension(defects: list[list[str]] | None, answer: str | None) -> str | None:
    """``normal`` when nothing is defective, the one dimension the tags name, else None."""
    if defects is not None:
        named = {t for tags in defects for t in tags}
        if not named:
            return "normal"
        return next(iter(named)) if len(named) == 1 and named <= set(DEFECT_DIMENSIONS) else None
    return "normal" if answer == "ABCD" else None


def sample_from_labels(sid: str, images: dict, labels: dict, split: str, meta: dict) -> dict:
    """A schema sample (``source=user``) from image sources by role and a row of label columns.

    Raises SampleError for labels that cannot be read (the full check is `validate_sample`).
    """
    answer = labels.get("answer")
    answer = None if answer is None or str(answer).strip() == "" else str(answer).strip()
    if answer is not None:
        try:
            answer = canonical_answer(answer)
        except AnswerError as exc:
            raise SampleError(sid, str(exc)) from exc
    defects = labels.get("candidate_defects")
    if isinstance(defects, str) and defects.strip():
        try:
            defects = json.loads(defects)
        except ValueError as exc:
            raise SampleError(sid, f"candidate_defects is not JSON ({exc})") from exc
    if not defects:
        per = [labels.get(f"defects_{letter}") for letter in LETTERS]
        defects = [_tags(v) for v in per] if any(v not in (None, "") for v in per) else None
    if defects is not None and answer is None:
        from labkit.data import answer_from_defects

        answer = answer_from_defects(defects)
    dimension = (labels.get("dimension") or "").strip() or derive_dimension(defects, answer)
    return {
        "id": sid, "original": images["original"], "candidates": [images[letter] for letter in LETTERS],
        "answer": answer, "dimension": dimension, "candidate_defects": defects,
        "caption": labels.get("caption") or "", "cot": labels.get("cot") or "",
        "split": (labels.get("split") or "").strip() or split, "source": "user", "meta": meta,
    }


# ----------------------------------------------------------------------------- readers

def _records_source(path: Path, split: str) -> list[tuple[str, dict | None, str | None]]:
    rows = manifest_rows(path, "id, original, A, B, C, D and labels")
    out = []
    for n, row in enumerate(rows, 1):
        sid = str(row.get("id") or f"row-{n}")
        images = {r: str(path.parent / str(row[r])) if row.get(r) else None for r in ROLES}
        meta = {"imported_from": str(path), "row": n}
        out.append(_build(sid, images, row, split, meta))
    return out


def _build(sid, images, labels, split, meta):
    try:
        return sid, sample_from_labels(sid, images, labels, split, meta), None
    except SampleError as exc:
        return sid, None, exc.problem


def _folder_source(root: Path, split: str) -> list[tuple[str, dict | None, str | None]]:
    label_file = next((root / n for n in ("labels.csv", "labels.jsonl") if (root / n).exists()), None)
    labels = {str(r.get("id")): r for r in read_records(label_file)} if label_file else {}
    folders = item_folders(root)
    out = []
    for folder in folders:
        files, problem = find_item_files(folder)
        if problem:
            out.append((folder.name, None, problem))
            continue
        out.append(_build(folder.name, files, labels.get(folder.name, {}), split,
                          {"imported_from": str(folder), "labels": str(label_file) if label_file else None}))
    unknown = sorted(set(labels) - {f.name for f in folders})
    out += [(sid, None, f"{label_file.name} labels an item with no folder") for sid in unknown]
    return out


def local_file_path(url: str, document_root: Path) -> str:
    """The file behind a task's image URL: a local-files URL, a file:// URL or a plain path."""
    if url.startswith("/data/local-files/"):
        rel = parse_qs(urlparse(url).query).get("d", [""])[0]
        if not rel:
            raise ValueError(f"local-files URL without a path: {url}")
        path = Path(rel)
        return str(path if path.is_absolute() else document_root / path)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme in ("http", "https", "s3", "gs", "azure-blob"):
        raise ValueError(f"remote image URL {url!r} is not fetched; keep the images in local-files storage")
    if url.startswith("/data/upload/"):
        raise ValueError(f"{url!r} was uploaded into Label Studio's media folder; export with local-files storage instead")
    return url


def _choices(result: list[dict], name: str) -> list[str] | None:
    for region in result:
        if region.get("from_name") == name and region.get("type") == "choices":
            return list(region.get("value", {}).get("choices", []))
    return None


def labels_from_annotation(result: list[dict]) -> dict:
    """Label columns (answer, defects_A..D, dimension) from one annotation's ``result``."""
    labels: dict = {}
    acceptable = _choices(result, ACCEPTABLE)
    if acceptable is not None:
        if NONE_ANSWER in acceptable and len(acceptable) > 1:
            raise ValueError(f"'{NONE_ANSWER}' (none acceptable) chosen together with {', '.join(sorted(set(acceptable) - {NONE_ANSWER}))}")
        labels["answer"] = "".join(sorted(acceptable)) or NONE_ANSWER
    tagged = {letter: _choices(result, f"defects_{letter}") for letter in LETTERS}
    if any(v is not None for v in tagged.values()):
        labels["candidate_defects"] = [tagged[letter] or [] for letter in LETTERS]
    dims = _choices(result, DIMENSION)
    if dims:
        labels["dimension"] = dims[0]
    return labels


def _label_studio_source(path: Path, split: str, document_root: Path | None) -> list[tuple[str, dict | None, str | None]]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); export the project as 'JSON' from Label Studio") from exc
    if not isinstance(tasks, list):
        raise ValueError(f"{path}: expected Label Studio's JSON export (a list of tasks)")
    root = document_root or Path(os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT") or path.parent)
    out = []
    for task in tasks:
        data = task.get("data") or {}
        sid = str(data.get("sample_id") or f"ls-{task.get('id')}")
        try:
            images = {r: local_file_path(str(data[r]), root) for r in ROLES}
        except KeyError as exc:
            out.append((sid, None, f"task {task.get('id')} has no image {exc} in its data"))
            continue
        except ValueError as exc:
            out.append((sid, None, str(exc)))
            continue
        kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        # The latest annotation wins (ISO timestamps sort as text; list order breaks ties).
        kept.sort(key=lambda a: a.get("updated_at") or a.get("created_at") or "")
        try:
            labels = labels_from_annotation(kept[-1].get("result") or []) if kept else {}
        except ValueError as exc:
            out.append((sid, None, f"annotation of task {task.get('id')}: {exc}"))
            continue
        if data.get("split") and "split" not in labels:
            labels["split"] = str(data["split"])  # tasks written by export_label_studio name their split
        meta = {"imported_from": str(path), "label_studio_task": task.get("id"),
                "annotation": kept[-1].get("id") if kept else None}
        out.append(_build(sid, images, labels, split, meta))
    return out


# ----------------------------------------------------------------------------- import

def read_source(fmt: str, src: str | os.PathLike, split: str = "train", document_root=None):
    """``[(id, sample or None, problem or None)]`` from a source of one of `FORMATS`."""
    src = Path(src)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not src.exists():
        raise FileNotFoundError(f"{str(src)!r} does not exist")
    if fmt == "folder":
        if not src.is_dir():
            raise ValueError(f"{src}: --from folder needs a folder of item folders")
        return _folder_source(src, split)
    if fmt == "label-studio":
        return _label_studio_source(src, split, Path(document_root) if document_root else None)
    if src.suffix.lower() != {"csv": ".csv", "jsonl": ".jsonl"}[fmt]:
        raise ValueError(f"{src}: --from {fmt} needs a .{fmt} file")
    return _records_source(src, split)


def import_records(fmt: str, src, out, split: str = "train", skip_invalid: bool = False, document_root=None,
                   name: str | None = None) -> tuple[dict[str, int], list[Problem]]:
    """Validate every row of a source and write the valid ones as a dataset; return sizes and problems.

    With any problem and not ``skip_invalid`` nothing is written (sizes empty). A split that
    already exists in ``out`` is never overwritten.
    """
    rows = read_source(fmt, src, split, document_root)
    problems: list[Problem] = []
    by_split: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for sid, sample, problem in rows:
        where = sample["split"] if sample else split
        if problem is None:
            try:
                validate_sample(sample, check_images=True)
                if sid in seen:
                    raise SampleError(sid, "duplicate id")
            except SampleError as exc:
                problem = exc.problem
        if problem is not None:
            problems.append(Problem(where, sid, problem))
            continue
        seen.add(sid)
        by_split.setdefault(where, []).append(_keep_encoding(sample))
    if problems and not skip_invalid:
        return {}, problems
    existing = set(list_splits(out)) & set(by_split) if Path(out).is_dir() else set()
    if existing:
        raise ValueError(f"{out} already has split(s) {', '.join(sorted(existing))}; import into another --out folder")
    sizes = {}
    for s, samples in by_split.items():
        save_split(samples, out, s, name=name)
        sizes[s] = len(samples)
    return sizes, problems


def _keep_encoding(sample: dict) -> dict:
    """Image files as their own bytes (a JPEG stays a JPEG instead of growing into a PNG)."""
    def cell(value):
        return {"bytes": Path(value).read_bytes(), "path": None} if isinstance(value, str) else value

    return dict(sample, original=cell(sample["original"]), candidates=[cell(c) for c in sample["candidates"]])


# ----------------------------------------------------------------------------- Label Studio export

def label_config() -> str:
    """The labelling config XML for the tasks `export_label_studio` writes."""
    views = "\n".join(
        f'    <View style="text-align:center"><Header value="{label}" size="5"/>'
        f'<Image name="{role}" value="${role}" maxWidth="220px"/></View>'
        for role, label in zip(ROLES, ("Original", *LETTERS)))
    defect_choices = "".join(f'<Choice value="{d}"/>' for d in DEFECT_DIMENSIONS)
    defects = "\n".join(
        f'  <Header value="Defects of {letter} (leave empty if acceptable)" size="6"/>\n'
        f'  <Choices name="defects_{letter}" toName="{letter}" choice="multiple" showInline="true">{defect_choices}</Choices>'
        for letter in LETTERS)
    dims = "".join(f'<Choice value="{d}"/>' for d in DIMENSIONS)
    letters = "".join(f'<Choice value="{letter}"/>' for letter in LETTERS)
    return f"""<View>
  <Text name="sample_id" value="$sample_id"/>
  <View style="display:flex;gap:8px;flex-wrap:wrap">
{views}
  </View>
  <Header value="Acceptable candidates (N: none is acceptable)"/>
  <Choices name="{ACCEPTABLE}" toName="original" choice="multiple" showInline="true" required="true">{letters}<Choice value="{NONE_ANSWER}"/></Choices>
{defects}
  <Header value="Dimension of the sample" size="6"/>
  <Choices name="{DIMENSION}" toName="original" choice="single" showInline="true">{dims}</Choices>
</View>
"""


def labels_to_result(answer: str | None, defects, dimension: str | None) -> list[dict]:
    """Label Studio ``result`` regions (choices) for a sample's labels (empty when unlabelled)."""
    result = []

    def region(name, to, choices):
        result.append({"id": f"{name}", "from_name": name, "to_name": to, "type": "choices",
                       "value": {"choices": list(choices)}, "origin": "prediction"})

    if answer is not None:
        region(ACCEPTABLE, "original", list(answer) if answer != NONE_ANSWER else [NONE_ANSWER])
    for letter, tags in zip(LETTERS, defects or []):
        if tags:
            region(f"defects_{letter}", letter, tags)
    if dimension:
        region(DIMENSION, "original", [dimension])
    return result


def export_label_studio(dataset, split: str, out_json, document_root=None) -> dict:
    """Write Label Studio tasks for a split, its images and ``label_config.xml``; return counts and paths."""

    out_json = Path(out_json)
    root = Path(document_root or out_json.parent).resolve()
    image_dir = (out_json.parent / f"{out_json.stem}_images").resolve()
    try:
        image_dir.relative_to(root)
    except ValueError as exc:
        raise ValueError(f"the images ({image_dir}) must lie under the document root {root}") from exc
    ds = load_split(dataset, split)
    tasks = []
    for sample in ds:
        sid = sample["id"]
        folder = image_dir / safe_name(sid)
        folder.mkdir(parents=True, exist_ok=True)
        data = {"sample_id": sid, "split": split}
        for role, image in zip(ROLES, [sample["original"], *sample["candidates"]]):
            path = folder / f"{role}.png"
            open_image(image, sid, role).save(path)
            data[role] = LOCAL_FILES_PREFIX + quote(str(path.relative_to(root)))
        task = {"data": data}
        result = labels_to_result(sample.get("answer"), sample.get("candidate_defects"), sample.get("dimension"))
        if result:
            task["predictions"] = [{"model_version": "labkit-labels", "result": result}]
        tasks.append(task)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(tasks, indent=2) + "\n")
    config = out_json.parent / CONFIG_NAME
    config.write_text(label_config())
    return {"tasks": len(tasks), "tasks_path": str(out_json), "config_path": str(config), "images": str(image_dir),
            "document_root": str(root)}
