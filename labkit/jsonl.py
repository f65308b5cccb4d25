"""JSON Lines files that survive interruptions: the lab's journals, logs and prediction files.

The one rule for every JSONL file the lab reads: a run appends one line per finished item,
so after a crash the *last* line may be cut in half (no newline at its end). `read_rows` drops
such a torn last line; a line that does not parse anywhere else, or a complete last line (one
that ends in a newline) that does not parse, is damage, and it raises `ValueError` naming
``file:line``. Blank lines are skipped. `append_rows` is the one appender: it first cuts a
torn tail off (so the next line starts clean), then writes, flushes and fsyncs, so a
finished line survives a crash. `read_by_id` keeps the last row per id, so a resumed run
redoes at most the item that was in flight; `write_atomic` replaces a file in one step.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "j.jsonl"
    >>> append_rows(p, [{"id": "a", "x": 1}]); _ = p.open("a").write('{"id": "b", "x"')
    >>> read_rows(p)
    [{'id': 'a', 'x': 1}]
    >>> append_rows(p, [{"id": "a", "x": 2}]); read_by_id(p)
    {'a': {'id': 'a', 'x': 2}}
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_rows(path: str | os.PathLike, missing_ok: bool = True) -> list[dict]:
    """The rows of a JSONL file in order; a torn last line is dropped (see the module doc).

    A missing file gives [] (or FileNotFoundError with ``missing_ok=False``)."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"JSONL file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    torn_tail = not text.endswith("\n")
    rows = []
    for i, (lineno, line) in enumerate(numbered):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1 and torn_tail:
                break  # a half-written last line: the write that a crash interrupted
            raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
    return rows


def read_by_id(path: str | os.PathLike, key: str = "id") -> dict[str, dict]:
    """Complete JSON object rows by their ``key`` (the last one per id wins); missing file -> {}."""
    return {row[key]: row for row in read_rows(path) if isinstance(row, dict) and key in row}


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line that has no newline (a crash mid-write), so appends start a clean line."""
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)


def append_rows(path: str | os.PathLike, rows: list[dict], **dumps) -> None:
    """Append one line per row, then flush and fsync (``dumps``: options of `json.dumps`)."""
    path = Path(path)
    if path.exists():
        _cut_torn_tail(path)
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, **dumps) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: str | os.PathLike, rows: list[dict]) -> None:
    """Replace a JSONL file in one step (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)
