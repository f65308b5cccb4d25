"""Generalisation benchmarks (BLINK, MuirBench, RealWorldQA) as published -> one MC form.

The paper checks that HCM-GRPO generalises beyond screening on three public
multiple-choice benchmarks. Users bring them from the Hugging Face hub or from a local
folder of the published Parquet files; this module reads them *as published* and turns
every row into one internal multiple-choice item (`MCItem`): an id, the question, the
images in order, the options, the answer letter and a category.

=============== ======================================================================
BLINK           hub ``BLINK-Benchmark/BLINK``; 14 subtask configs; splits ``val`` and
                ``test`` (test answers are withheld: the column says "hidden"); columns
                ``idx``, ``question``, ``prompt``, ``choices``, ``answer`` ("(A)"),
                ``sub_task``, ``image_1`` … ``image_4`` (None when unused).
MuirBench       hub ``MUIRBENCH/MUIRBENCH``; split ``test``; ``idx``, ``task``,
                ``image_relation``, ``image_type``, ``question`` with ``<image>``
                placeholders, ``options`` (an option may itself be ``<image>``),
                ``image_list``, ``answer`` (a letter), ``counterpart_idx``.
RealWorldQA     hub ``xai-org/RealworldQA`` (mirror ``lmms-lab/RealWorldQA``); split
                ``test``; ``image``, ``question`` (options "A. …" and the instruction
                inside the text), ``answer`` (a letter, or a word/number).
=============== ======================================================================

Local folders use the hub's layout: ``CONFIG/val-00000-of-00001.parquet`` (BLINK),
``data/test-00000-of-00002.parquet``, or ``CONFIG/test/0000.parquet``; images are
``datasets.Image`` cells (``{"bytes", "path"}``).

Choices made here, all visible in the output:

- Image placeholders. MuirBench's ``<image>`` placeholders (question first, then the
  options, in order) become "[image k]"; the k-th image of ``image_list`` is image k.
  The prompt shows every image first, in order, then the text (the lab's style).
- RealWorldQA rows whose question has no lettered options (free-form questions answered
  with a word or number) cannot be single-letter MC items: they are *skipped and counted*
  (``MCLoad.skipped``, printed by ``labkit mc-prepare``), or refused with
  ``open_questions="error"``. A word answer that equals one option's text is mapped to
  that option's letter.
- Hidden answers (BLINK test) raise `HiddenAnswersError` unless ``require_answers=False``
  (prediction only; scoring such items is refused by `labkit.mc.metrics.score_mc`).
- A malformed row raises `MCRowError` naming the file, the row index and the idx.
- The paper's protocol: a seeded 1:1 train/test split of the labelled split (RealWorldQA
  ``test``, MuirBench ``test``, BLINK ``val``, since BLINK's test answers are hidden),
  stratified by category; MuirBench's answerable/unanswerable counterparts stay on the same
  side (they share images). ``protocol="all-test"`` keeps the whole labelled split as test.

Row parsing and `MCItem`: `labkit.mc.rows`. Prepared folders (split, storage): `labkit.mc.data`. Prompts, SFT/GRPO rows and
evaluation: `labkit.mc.tasks`. Scoring and rewards: `labkit.mc.metrics`. Run::

    labkit mc-prepare --benchmark muirbench --source MUIRBENCH/MUIRBENCH --out data/mc/muirbench --seed 0
    labkit mc-prepare --benchmark blink --source ~/mirrors/BLINK --out data/mc/blink
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from labkit.mc.rows import MCItem, MCRowError, blink_item, muirbench_item, realworldqa_item

BENCHMARKS = ("blink", "muirbench", "realworldqa")
HUB_IDS = {
    "blink": "BLINK-Benchmark/BLINK",
    "muirbench": "MUIRBENCH/MUIRBENCH",
    "realworldqa": "xai-org/RealworldQA",
}
LABELLED_SPLIT = {"blink": "val", "muirbench": "test", "realworldqa": "test"}
BLINK_SUBTASKS = (
    "Art_Style", "Counting", "Forensic_Detection", "Functional_Correspondence", "IQ_Test",
    "Jigsaw", "Multi-view_Reasoning", "Object_Localization", "Relative_Depth",
    "Relative_Reflectance", "Semantic_Correspondence", "Spatial_Relation",
    "Visual_Correspondence", "Visual_Similarity",
)
# Columns a file must have to be read as the benchmark (others are optional or ignored).
REQUIRED_COLUMNS = {
    "blink": ("idx", "question", "choices", "answer", "image_1"),
    "muirbench": ("idx", "question", "options", "image_list", "answer"),
    "realworldqa": ("image", "question", "answer"),
}
PROTOCOLS = ("split", "all-test")


class HiddenAnswersError(ValueError):
    """The split's answers are withheld (BLINK test): nothing to score or train on."""


@dataclass
class MCLoad:
    """What a loader read: the items, and the rows it skipped with the reason for each."""

    benchmark: str
    split: str
    source: str
    items: list[MCItem]
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading sources

def _split_of(path: Path) -> str:
    """The split a hub-layout file belongs to: ``val-00000-of-00001.parquet`` -> val,
    ``test.parquet`` -> test, ``CONFIG/test/0000.parquet`` -> test."""
    stem = path.name[: -len(".parquet")]
    if re.fullmatch(r"\d+", stem):
        return path.parent.name
    m = re.fullmatch(r"(.+?)-\d+-of-\d+", stem)
    return m.group(1) if m else stem


def _config_of(path: Path, root: Path) -> str | None:
    """The config folder a file sits in (BLINK's subtask), if any."""
    for part in path.relative_to(root).parts[:-1]:
        if part in BLINK_SUBTASKS:
            return part
    return None


def local_files(root: str | os.PathLike, split: str, configs: list[str] | None = None) -> list[Path]:
    """The Parquet files of one split under a local folder (or the one file given)."""
    root = Path(root)
    if root.is_file():
        return [root]
    # "test_0412-00001-of-00002.parquet": an early RealWorldQA revision dated its split name.
    files = sorted(p for p in root.rglob("*.parquet") if re.fullmatch(rf"{re.escape(split)}(_\d+)?", _split_of(p)))
    if configs:
        files = [p for p in files if _config_of(p, root) in configs or _config_of(p, root) is None]
    if not files:
        found = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))[:10]
        raise FileNotFoundError(
            f"no Parquet files of split {split!r} under {str(root)!r} (expected names like "
            f"{split}-00000-of-00001.parquet or {split}.parquet); found: {', '.join(found) or 'no Parquet files'}"
        )
    return files


def _iter_local(benchmark: str, root: Path, split: str, configs) -> Iterator[tuple[str, int, dict, str | None]]:
    import pyarrow.parquet as pq

    base = root if root.is_dir() else root.parent
    for f in local_files(root, split, configs):
        where = str(f.relative_to(base))
        try:
            pf = pq.ParquetFile(f)
        except Exception as exc:
            raise ValueError(f"{benchmark}: {where}: not a readable Parquet file ({exc})") from exc
        names = pf.schema_arrow.names
        missing = [c for c in REQUIRED_COLUMNS[benchmark] if c not in names]
        if missing:
            raise ValueError(
                f"{benchmark}: {where}: not the published {benchmark} schema: missing column(s) "
                f"{', '.join(missing)}; the file has {', '.join(names)}"
            )
        config = _config_of(f, base)
        row = 0
        for batch in pf.iter_batches(batch_size=16):
            for record in batch.to_pylist():
                yield where, row, record, config
                row += 1


def _iter_hub(benchmark: str, hub_id: str, split: str, configs) -> Iterator[tuple[str, int, dict, str | None]]:
    try:
        from datasets import load_dataset
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise RuntimeError("loading from the hub needs the `datasets` package") from exc
    names = list(configs or (BLINK_SUBTASKS if benchmark == "blink" else [None]))
    for config in names:
        try:
            ds = load_dataset(hub_id, config, split=split)
        except Exception as exc:
            raise FileNotFoundError(
                f"{benchmark}: could not load {hub_id!r}"
                f"{' config ' + repr(config) if config else ''} split {split!r} from the hub "
                f"({type(exc).__name__}: {exc}). Offline? Download the Parquet files and pass their folder."
            ) from exc
        missing = [c for c in REQUIRED_COLUMNS[benchmark] if c not in ds.column_names]
        if missing:
            raise ValueError(f"{benchmark}: {hub_id}: missing column(s) {', '.join(missing)}")
        for i, record in enumerate(ds):
            yield f"{hub_id}/{config or 'default'}:{split}", i, record, config


def load_benchmark(
    benchmark: str,
    source: str | os.PathLike | None = None,
    split: str | None = None,
    configs: list[str] | None = None,
    require_answers: bool = True,
    check_images: bool = True,
    open_questions: str = "skip",
    limit: int | None = None,
    progress: bool = False,
    reader: str = "auto",
) -> MCLoad:
    """Read one benchmark split from a local folder/file of Parquet or a hub id.

    ``split`` defaults to the labelled split (BLINK ``val``, others ``test``). ``configs``
    selects BLINK subtasks. Raises `MCRowError` for a malformed row, `HiddenAnswersError`
    when answers are withheld and ``require_answers``; ``open_questions`` is ``skip`` or
    ``error`` for RealWorldQA rows without lettered options. ``limit`` stops after that
    many items (small mode). ``progress`` shows a progress bar over the rows. ``reader``:
    ``auto`` (an existing path is read as Parquet with pyarrow, anything else goes to
    ``datasets.load_dataset``), ``parquet`` or ``datasets`` (``load_dataset(source, config)``,
    which also reads a local folder in the hub's layout).
    """
    from tqdm.auto import tqdm

    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    if open_questions not in ("skip", "error"):
        raise ValueError(f"open_questions must be 'skip' or 'error', got {open_questions!r}")
    if configs:
        if benchmark != "blink":
            raise ValueError("configs (subtasks) exist only for BLINK")
        unknown = [c for c in configs if c not in BLINK_SUBTASKS]
        if unknown:
            raise ValueError(f"unknown BLINK subtask(s) {', '.join(unknown)}; known: {', '.join(BLINK_SUBTASKS)}")
    source = str(source or HUB_IDS[benchmark])
    split = split or LABELLED_SPLIT[benchmark]
    if reader not in ("auto", "parquet", "datasets"):
        raise ValueError(f"reader must be auto, parquet or datasets, got {reader!r}")
    path = Path(os.path.expanduser(source))
    if reader == "datasets":
        rows = _iter_hub(benchmark, str(path) if path.exists() else source, split, configs)
    elif path.exists():
        rows = _iter_local(benchmark, path, split, configs)
    elif reader == "auto" and re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        rows = _iter_hub(benchmark, source, split, configs)
    else:
        raise FileNotFoundError(f"{benchmark}: source {source!r} is neither a local file/folder nor a hub id (owner/name)")

    parser = {"blink": blink_item, "muirbench": muirbench_item, "realworldqa": realworldqa_item}[benchmark]
    out = MCLoad(benchmark=benchmark, split=split, source=source, items=[])
    seen: dict[str, str] = {}
    number = 0
    for where, row, record, config in tqdm(rows, desc=f"load {benchmark}", unit="row", disable=not progress):
        idx = record.get("idx", f"{number:05d}") if benchmark != "realworldqa" else f"rwqa-{number:05d}"
        number += 1

        def fail(problem, where=where, row=row, idx=idx):
            raise MCRowError(benchmark, where, row, idx, problem)

        if not isinstance(record.get("idx", ""), (str, int)) and benchmark != "realworldqa":
            fail("idx must be a string or an integer")
        # A single file or a flat folder may mix subtasks: keep the asked ones ("Art Style" or "Art_Style").
        if configs and config is None and record.get("sub_task") and str(record["sub_task"]).replace(" ", "_") not in configs:
            continue
        if benchmark == "realworldqa":
            item = parser(record, fail, check_images, config, row_id=str(idx))
            if item is None:
                if open_questions == "error":
                    fail("question has no lettered options (a free-form question); the MC form needs options")
                out.skipped.append(f"{where} row {row} ({idx}): no lettered options (free-form question)")
                continue
        else:
            item = parser(record, fail, check_images, config)
        if item.answer is None and require_answers:
            raise HiddenAnswersError(
                f"{benchmark} split {split!r}: answers are hidden ({where} row {row}, idx {idx!r}, answer "
                f"{record.get('answer')!r}). The published test answers are withheld, so they cannot be scored "
                f"or trained on: use the labelled split {LABELLED_SPLIT[benchmark]!r}, or predict with "
                f"require_answers=False and submit to the benchmark's evaluation server."
            )
        if item.id in seen:
            fail(f"duplicate idx (also at {seen[item.id]})")
        seen[item.id] = f"{where} row {row}"
        item.meta.update({"source_file": where, "source_row": row, "split": split})
        out.items.append(item)
        if limit is not None and len(out.items) >= limit:
            break
    if not out.items:
        raise ValueError(f"{benchmark} {split!r} from {source!r}: no usable items ({len(out.skipped)} skipped)")
    return out
