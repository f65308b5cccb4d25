"""Hard cases in the annotation store: marking samples from an HCM mining file, and removing marks.

Used through `labkit.store.AnnotationStore.import_hard_cases` / ``unmark_hard`` (and
``labkit store import-hard`` / ``unmark-hard``); the file formats are read by
`labkit.store.schema.read_hard_ids`.
"""
from __future__ import annotations

import os
from typing import Iterable

from labkit.store.schema import StoreError, _now, read_hard_ids


def import_hard_cases(store, path: str | os.PathLike, dataset: str, source: str | None = None) -> int:
    """Mark samples as hard from an HCM mining file (see `read_hard_ids` for the formats).

    Every id must be a registered sample of ``dataset``. Returns how many were newly marked.
    """
    ids = read_hard_ids(path)
    src = source or str(path)

    def fn(conn):
        pks = {}
        unknown = []
        for sid in ids:
            row = conn.execute("SELECT id FROM samples WHERE dataset = ? AND sample_id = ?", (dataset, sid)).fetchone()
            (unknown.append(sid) if not row else pks.__setitem__(sid, row[0]))
        if unknown:
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            raise StoreError(
                f"{path}: {len(unknown)} hard id(s) are not registered samples of {dataset!r}: "
                f"{', '.join(unknown[:5])}{more}"
            )
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO hard_cases (sample, source, imported_at) VALUES (?, ?, ?)",
            [(pk, src, _now()) for pk in pks.values()],
        )
        return conn.total_changes - before

    return store._write(fn)


def unmark_hard(store, dataset: str, sample_ids: Iterable[str]) -> int:
    """Remove the hard mark of these samples (unknown or unmarked ids are ignored); returns how many."""
    def fn(conn):
        before = conn.total_changes
        conn.executemany(
            "DELETE FROM hard_cases WHERE sample = (SELECT id FROM samples WHERE dataset = ? AND sample_id = ?)",
            [(dataset, str(s)) for s in sample_ids])
        return conn.total_changes - before

    return store._write(fn)
