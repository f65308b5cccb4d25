"""The lab's dataset schema, its dimension names and words, validation and storage.

One *sample* is an original product image, exactly four generated candidates A–D and
their labels:

=================== ============================================================
``id``              unique string
``original``        image
``candidates``      exactly 4 images, A, B, C, D
``answer``          canonical answer: letters in order ("AC") or "N"; None if unlabelled
``dimension``       normal | appearance_deformation | physical_shadow |
                    placement_layout | extension_rationality; None if unlabelled
``candidate_defects`` per candidate a list of defect tags (empty = acceptable);
                    None when unknown (unlabelled data)
``caption``         descriptions of the images (text), may be empty
``cot``             chain of thought ending in the answer, may be empty
``split``           train | test | pseudo_label | exploration
``source``          synthetic | generated | user
``meta``            JSON text (generator parameters, ground truth of unlabelled data, ...)
=================== ============================================================

A dataset folder holds one Parquet file per split (``train.parquet``, or shards
``train-00000-of-00004.parquet``) written by Hugging Face ``datasets`` with ``Image``
features, plus ``dataset.json`` (name, version, parent, split sizes). Loading validates
every sample and raises `SampleError` naming the sample id and the problem.

How a sample becomes a model input (layouts, messages, training rows) is `labkit.conversions`.
Run ``labkit info DATASET_DIR`` for a summary of a folder.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

from PIL import Image as PILImage

from labkit.metrics import LETTERS, NONE_ANSWER, AnswerError, canonical_answer, random_baseline

DIMENSIONS = (
    "normal",
    "appearance_deformation",
    "physical_shadow",
    "placement_layout",
    "extension_rationality",
)
DEFECT_DIMENSIONS = DIMENSIONS[1:]
# The words for each defect dimension, in every register the lab writes them.
DIMENSION_WORDS = {  # plain name, as in the paper's tables and the synthetic captions
    "appearance_deformation": "appearance deformation",
    "physical_shadow": "physical shadow",
    "placement_layout": "placement layout",
    "extension_rationality": "extension rationality",
}
DIMENSION_SHORT = {  # one word, for terse reasoning and image overlays
    "appearance_deformation": "appearance", "physical_shadow": "shadow",
    "placement_layout": "placement", "extension_rationality": "extension",
}
DIMENSION_VERDICTS = {  # short verdicts for the "verdicts" reasoning style
    "appearance_deformation": "product changed",
    "physical_shadow": "wrong shadow",
    "placement_layout": "bad placement",
    "extension_rationality": "added items",
}
DIMENSION_SENTENCES = {  # a clause for the oracle's reasoning
    "appearance_deformation": "the product's appearance was changed (appearance deformation)",
    "physical_shadow": "the shadow does not agree with the light (physical shadow)",
    "placement_layout": "the product is placed implausibly (placement layout)",
    "extension_rationality": "content beyond the original was added (extension rationality)",
}
DIMENSION_GUIDES = {  # what an annotator looks for (the app's guidelines)
    "appearance_deformation": "product changed",
    "physical_shadow": "lighting/shadow",
    "placement_layout": "floating, impossible support, scale",
    "extension_rationality": "invented or duplicated content",
}
SPLITS = ("train", "test", "pseudo_label", "exploration")
SOURCES = ("synthetic", "generated", "user")
MIN_IMAGE_SIDE = 8
COLUMNS = (
    "id", "original", "candidates", "answer", "dimension", "candidate_defects",
    "caption", "cot", "split", "source", "meta",
)


class SampleError(ValueError):
    """A sample that breaks the schema; the message names the sample id and the problem."""

    def __init__(self, sample_id: Any, problem: str):
        self.sample_id = sample_id
        self.problem = problem
        super().__init__(f"sample {sample_id!r}: {problem}")


def features():
    """The `datasets.Features` of the schema."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "original": Image(),
            "candidates": List(Image()),
            "answer": Value("string"),
            "dimension": Value("string"),
            "candidate_defects": List(List(Value("string"))),
            "caption": Value("string"),
            "cot": Value("string"),
            "split": Value("string"),
            "source": Value("string"),
            "meta": Value("string"),
        }
    )


# ----------------------------------------------------------------------------- images

def open_image(value: Any, sample_id: Any = "?", what: str = "image") -> PILImage.Image:
    """Decode an image given as PIL, bytes, a path or a datasets dict; RGB, fully loaded.

    Raises SampleError for anything unreadable, too small or too large
    (PIL's decompression-bomb limit applies).
    """
    try:
        if isinstance(value, PILImage.Image):
            img = value
        elif isinstance(value, dict):
            if value.get("bytes") is not None:
                img = PILImage.open(io.BytesIO(value["bytes"]))
            elif value.get("path"):
                img = PILImage.open(value["path"])
            else:
                raise SampleError(sample_id, f"{what} is empty")
        elif isinstance(value, (bytes, bytearray)):
            img = PILImage.open(io.BytesIO(value))
        elif isinstance(value, (str, os.PathLike)):
            img = PILImage.open(value)
        elif value is None:
            raise SampleError(sample_id, f"{what} is missing")
        else:
            raise SampleError(sample_id, f"{what} has unsupported type {type(value).__name__}")
        img.load()
    except SampleError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise SampleError(sample_id, f"{what} is too large ({exc})") from exc
    except Exception as exc:  # PIL raises many types for corrupt data
        raise SampleError(sample_id, f"{what} is unreadable ({type(exc).__name__}: {exc})") from exc
    if min(img.size) < MIN_IMAGE_SIDE:
        raise SampleError(sample_id, f"{what} is too small ({img.size[0]}x{img.size[1]}, min side {MIN_IMAGE_SIDE})")
    return img if img.mode == "RGB" else img.convert("RGB")


# ----------------------------------------------------------------------------- validation

def answer_from_defects(candidate_defects: list[list[str]]) -> str:
    """The answer implied by per-candidate defects: the letters with no defect, or "N"."""
    letters = "".join(letter for letter, tags in zip(LETTERS, candidate_defects) if not tags)
    return letters or NONE_ANSWER


def validate_sample(sample: dict, check_images: bool = True) -> dict:
    """Check one sample against the schema and return it with a canonical answer.

    Raises SampleError naming the id and the first problem found.
    """
    sid = sample.get("id")
    if not sid or not isinstance(sid, str):
        raise SampleError(sid, "missing or non-string id")
    missing = [c for c in ("original", "candidates") if c not in sample]
    if missing:
        raise SampleError(sid, f"missing column(s) {', '.join(missing)}")
    candidates = sample["candidates"]
    if candidates is None or not isinstance(candidates, (list, tuple)) or len(candidates) != 4:
        count = "none" if candidates is None else (len(candidates) if isinstance(candidates, (list, tuple)) else "not a list")
        raise SampleError(sid, f"expected exactly 4 candidates (A-D), got {count}")
    split = sample.get("split")
    if split not in SPLITS:
        raise SampleError(sid, f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    source = sample.get("source")
    if source not in SOURCES:
        raise SampleError(sid, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    dimension = sample.get("dimension")
    if dimension is not None and dimension not in DIMENSIONS:
        raise SampleError(sid, f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")
    answer = sample.get("answer")
    if answer is not None:
        try:
            answer = canonical_answer(answer)
        except AnswerError as exc:
            raise SampleError(sid, str(exc)) from exc
    elif split in ("train", "test"):
        raise SampleError(sid, f"split {split!r} needs an answer")
    defects = sample.get("candidate_defects")
    if defects is not None:
        if not isinstance(defects, (list, tuple)) or len(defects) != 4:
            raise SampleError(sid, "candidate_defects must hold one list of tags per candidate (4)")
        for letter, tags in zip(LETTERS, defects):
            if tags is None or not all(isinstance(t, str) and t for t in tags):
                raise SampleError(sid, f"candidate {letter}: defect tags must be a list of non-empty strings")
        if answer is not None and answer_from_defects(defects) != answer:
            raise SampleError(
                sid,
                f"answer {answer!r} is inconsistent with candidate_defects "
                f"(defect-free candidates give {answer_from_defects(defects)!r})",
            )
    meta = sample.get("meta")
    if meta not in (None, "") and not isinstance(meta, dict):
        try:
            json.loads(meta)
        except (TypeError, ValueError) as exc:
            raise SampleError(sid, f"meta is not valid JSON ({exc})") from exc
    if check_images:
        open_image(sample["original"], sid, "original image")
        for letter, cand in zip(LETTERS, candidates):
            open_image(cand, sid, f"candidate {letter}")
    out = dict(sample)
    out["answer"] = answer
    return out


def encode_image_cell(value: Any, sid: str, what: str) -> dict:
    """Image cell for Arrow: the encoded bytes when given, else PNG bytes of a validated image
    (PNG keeps synthetic pixels exact)."""
    if isinstance(value, dict) and value.get("bytes") is not None:
        return {"bytes": value["bytes"], "path": None}
    img = open_image(value, sid, what)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def normalise_sample(sample: dict) -> dict:
    """Validate and fill defaults so a sample fits `features()` exactly."""
    s = validate_sample(sample, check_images=True)
    sid = s["id"]
    meta = s.get("meta")
    if isinstance(meta, dict):
        meta = json.dumps(meta, sort_keys=True)
    return {
        "id": sid,
        "original": encode_image_cell(s["original"], sid, "original image"),
        "candidates": [encode_image_cell(c, sid, f"candidate {l}") for l, c in zip(LETTERS, s["candidates"])],
        "answer": s.get("answer"),
        "dimension": s.get("dimension"),
        "candidate_defects": [list(t) for t in s["candidate_defects"]] if s.get("candidate_defects") is not None else None,
        "caption": s.get("caption") or "",
        "cot": s.get("cot") or "",
        "split": s["split"],
        "source": s["source"],
        "meta": meta or "{}",
    }


# ----------------------------------------------------------------------------- storage

def _split_files(root: Path, split: str) -> list[Path]:
    single = root / f"{split}.parquet"
    shards = sorted(root.glob(f"{split}-*-of-*.parquet"))
    return ([single] if single.exists() else []) + shards


def list_splits(root: str | os.PathLike) -> list[str]:
    """Splits present in a dataset folder, in the schema's order."""
    root = Path(root)
    return [s for s in SPLITS if _split_files(root, s)]


def save_split(
    samples: Iterable[dict],
    root: str | os.PathLike,
    split: str,
    shard: tuple[int, int] | None = None,
    name: str | None = None,
    parent: str | None = None,
):
    """Validate samples and write them as ``root/split.parquet`` (or one shard of it).

    Each sample's ``split`` must equal ``split``. Returns the written `datasets.Dataset`.
    Writes to a temporary file first so an interrupted save leaves the old file intact.
    """
    from datasets import Dataset

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    rows = []
    seen = set()
    for sample in samples:
        row = normalise_sample(sample)
        if row["split"] != split:
            raise SampleError(row["id"], f"belongs to split {row['split']!r}, not {split!r}")
        if row["id"] in seen:
            raise SampleError(row["id"], "duplicate id")
        seen.add(row["id"])
        rows.append(row)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ds = Dataset.from_list(rows, features=features())
    fname = f"{split}.parquet" if shard is None else f"{split}-{shard[0]:05d}-of-{shard[1]:05d}.parquet"
    tmp = root / (fname + ".tmp")
    ds.to_parquet(str(tmp))
    os.replace(tmp, root / fname)
    if shard is None:
        for old in root.glob(f"{split}-*-of-*.parquet"):
            old.unlink()
    write_manifest(root, name=name, parent=parent)
    return ds


def write_manifest(root: str | os.PathLike, name: str | None = None, parent: str | None = None) -> dict:
    """(Re)write ``dataset.json`` with split sizes read from the Parquet metadata."""
    import pyarrow.parquet as pq

    root = Path(root)
    path = root / "dataset.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest.setdefault("schema_version", 1)
    if name:
        manifest["name"] = name
    manifest.setdefault("name", root.name)
    if parent:
        manifest["parent"] = parent
    manifest["splits"] = {
        s: sum(pq.ParquetFile(f).metadata.num_rows for f in _split_files(root, s)) for s in list_splits(root)
    }
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_split(root: str | os.PathLike, split: str, validate: bool = True, check_images: bool = True):
    """Load one split as a `datasets.Dataset`; validate every sample unless told not to."""
    from datasets import Dataset, concatenate_datasets

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist")
    files = _split_files(root, split)
    if not files:
        have = list_splits(root)
        raise FileNotFoundError(f"no split {split!r} in {str(root)!r}; it has: {', '.join(have) or 'nothing'}")
    parts = []
    for f in files:
        try:
            parts.append(Dataset.from_parquet(str(f), features=features()))
        except Exception as exc:
            raise ValueError(f"{f}: not a readable dataset file in the lab's schema ({exc})") from exc
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    if validate:
        validate_dataset(ds, check_images=check_images)
    return ds


def validate_dataset(ds, check_images: bool = True) -> None:
    """Validate every row of a Dataset (images read undecoded, then decoded by PIL)."""
    from datasets import Image, List

    raw = ds.cast_column("original", Image(decode=False)).cast_column("candidates", List(Image(decode=False)))
    seen = set()
    for row in raw:
        validate_sample(row, check_images=check_images)
        if row["id"] in seen:
            raise SampleError(row["id"], "duplicate id")
        seen.add(row["id"])


def load_dataset_dir(root: str | os.PathLike, validate: bool = True):
    """All splits of a dataset folder as a `datasets.DatasetDict`."""
    from datasets import DatasetDict

    splits = list_splits(root)
    if not splits:
        raise FileNotFoundError(f"no dataset splits (*.parquet) in {str(root)!r}")
    return DatasetDict({s: load_split(root, s, validate=validate) for s in splits})


def dataset_info(root: str | os.PathLike) -> dict:
    """Per split: size, mean answer length, dimension counts, random baseline (percent)."""
    import pyarrow.parquet as pq

    root = Path(root)
    info = {}
    for split in list_splits(root):
        answers, dims = [], {}
        n = 0
        for f in _split_files(root, split):
            table = pq.read_table(f, columns=["id", "answer", "dimension"])
            n += table.num_rows
            for a, d in zip(table.column("answer").to_pylist(), table.column("dimension").to_pylist()):
                if a is not None:
                    answers.append(canonical_answer(a))
                dims[d or "unlabelled"] = dims.get(d or "unlabelled", 0) + 1
        info[split] = {
            "n": n,
            "labelled": len(answers),
            "mean_answer_length": (sum(len(a) for a in answers) / len(answers)) if answers else None,
            "none_answers": sum(a == NONE_ANSWER for a in answers),
            "dimensions": dict(sorted(dims.items())),
            "random_baseline": random_baseline(answers) if answers else None,
        }
    return info


def load_training_split(recipe, loader=None):
    """The recipe's training split(s), limited to ``recipe.limit`` samples (the first ones).

    ``loader(data_dir, split)`` reads one split: the lab schema by default (validated, images
    decoded later), `labkit.mc.data.load_mc` for the generalisation benchmarks.
    """
    from datasets import concatenate_datasets  # lazy: `datasets` costs seconds at import

    if loader is None:
        def loader(root, split):
            return load_split(root, split, validate=True, check_images=False)

    parts = [loader(recipe.data, s) for s in [recipe.split, *recipe.extra_splits]]
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    if recipe.limit is not None:
        ds = ds.select(range(min(recipe.limit, len(ds))))
    if len(ds) == 0:
        raise ValueError(f"{recipe.source or recipe.arm}: no training samples in {recipe.data} ({recipe.split})")
    return ds
