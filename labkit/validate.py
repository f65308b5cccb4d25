"""Check a whole dataset folder and list every bad sample, not only the first.

`find_problems(root)` reads each split file with pyarrow (images undecoded), checks every row
with `labkit.data.validate_sample` (schema, labels, answer/defect consistency, every image
decoded by PIL) and returns one `Problem` per bad sample (the first problem of each), plus
file-level problems (an unreadable Parquet file, a row stored under the wrong split) and ids
used twice, within a split or across splits (a sample in both train and test leaks).

Run ``labkit validate DATASET_DIR`` (exit status 1 when anything is wrong); ``labkit info`` and
``labkit show`` run the same checks before they summarise or draw anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from labkit.data import SampleError, _split_files, list_splits, validate_sample

READ_BATCH = 64  # rows per pyarrow batch: image bytes of a batch are in memory at once


@dataclass(frozen=True)
class Problem:
    """One bad sample (``id`` None for a problem of a whole file)."""

    split: str
    id: str | None
    problem: str

    def __str__(self) -> str:
        where = f"sample {self.id!r}" if self.id is not None else "file"
        return f"{self.split}: {where}: {self.problem}"

    def as_dict(self) -> dict:
        return {"split": self.split, "id": self.id, "problem": self.problem}


def find_problems(root: str | os.PathLike, check_images: bool = True) -> list[Problem]:
    """Every bad sample of every split of a dataset folder, in file order.

    Raises FileNotFoundError when the folder or its splits do not exist (nothing to check).
    """
    import pyarrow.parquet as pq

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist")
    splits = list_splits(root)
    if not splits:
        raise FileNotFoundError(f"no dataset splits (*.parquet) in {str(root)!r}")
    problems: list[Problem] = []
    first_seen: dict[str, str] = {}  # id -> split where it first appeared
    for split in splits:
        for path in _split_files(root, split):
            try:
                batches = pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH)
                for batch in batches:
                    for row in batch.to_pylist():
                        problems += _row_problems(row, split, check_images, first_seen)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                problems.append(Problem(split, None, f"{path.name} is not a readable Parquet file ({type(exc).__name__}: {exc})"))
    return problems


def _row_problems(row: dict, split: str, check_images: bool, first_seen: dict[str, str]) -> list[Problem]:
    sid = row.get("id")
    try:
        validate_sample(row, check_images=check_images)
    except SampleError as exc:
        return [Problem(split, exc.sample_id, exc.problem)]
    if row.get("split") != split:
        return [Problem(split, sid, f"stored in the {split!r} file but its split is {row.get('split')!r}")]
    if sid in first_seen:
        other = first_seen[sid]
        return [Problem(split, sid, "duplicate id" + ("" if other == split else f" (also in split {other!r})"))]
    first_seen[sid] = split
    return []


def format_problems(problems: list[Problem], limit: int | None = None) -> str:
    """One line per problem (the first ``limit``), then how many were left out."""
    shown = problems if limit is None else problems[:limit]
    lines = [str(p) for p in shown]
    if len(problems) > len(shown):
        lines.append(f"... and {len(problems) - len(shown)} more (run `labkit validate` for the full list)")
    return "\n".join(lines)
