"""JSON Lines files that survive interruptions: the lab's journals and prediction files.

A run appends one line per finished item; after a crash the last line may be cut in
half. `read_by_id` keeps every complete line (the last one per id wins) and drops a torn
one, so a resumed run redoes at most the item that was in flight.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_by_id(path: str | os.PathLike, key: str = "id") -> dict[str, dict]:
    """Complete JSON object lines by their ``key``; missing file -> {}; torn lines ignored."""
    path = Path(path)
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and key in row:
            rows[row[key]] = row
    return rows


def write_atomic(path: str | os.PathLike, rows: list[dict]) -> None:
    """Replace a JSONL file in one step (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)
