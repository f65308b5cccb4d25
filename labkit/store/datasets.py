"""Dataset identity in the annotation store: a readable name plus a content fingerprint.

A store keys samples by ``(dataset name, sample id)``. Two different folders both called
``data/`` would otherwise share samples (and show one folder's images for the other's labels),
so every registered split also records a *fingerprint*: a SHA-256 over its sample ids and the
bytes of every image, in file order. Registering a split under a name whose recorded
fingerprint differs is refused with a message naming both folders; the same content from
another folder (a copy) is accepted.

    >>> split_fingerprint("data/synth", "train")          # doctest: +SKIP
    'a3f09c1e2b7d5e44'

Used by `labkit.store.AnnotationStore.register_split` and the app's `SampleIndex`.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from labkit.data import _split_files
from labkit.store.schema import StoreError, _now

FINGERPRINT_CHARS = 16  # 64 bits of SHA-256: plenty to tell datasets apart, short enough to read


def dataset_name(root: str | os.PathLike) -> str:
    """A dataset folder's readable name: ``name`` in its ``dataset.json``, else the folder name."""
    root = Path(root)
    manifest = root / "dataset.json"
    if manifest.exists():
        try:
            name = json.loads(manifest.read_text()).get("name")
            if name:
                return str(name)
        except ValueError:
            pass
    return root.resolve().name


def _update_image(h, value) -> None:
    # An Image feature is stored as {"bytes": ..., "path": ...}; hash the bytes (a path only
    # when the bytes live elsewhere).
    if isinstance(value, dict):
        data = value.get("bytes")
        h.update(data if data is not None else str(value.get("path")).encode())
    else:
        h.update(repr(value).encode())
    h.update(b"\x00")


def split_fingerprint(root: str | os.PathLike, split: str) -> str:
    """SHA-256 (first `FINGERPRINT_CHARS` hex digits) of a split's ids and image bytes.

    Reads the Parquet files batch by batch (bounded memory); labels, captions and metadata do
    not change it, so relabelling a dataset keeps its identity.
    """
    import pyarrow.parquet as pq  # lazy: only fingerprinting reads Parquet; opening a store stays light

    files = _split_files(Path(root), split)
    if not files:
        raise FileNotFoundError(f"no split {split!r} in {str(root)!r}")
    h = hashlib.sha256()
    for f in files:
        pf = pq.ParquetFile(f)
        columns = [c for c in ("id", "original", "candidates") if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=64, columns=columns):
            rows = batch.to_pydict()
            for i, sid in enumerate(rows["id"]):
                h.update(str(sid).encode() + b"\x01")
                if "original" in rows:
                    _update_image(h, rows["original"][i])
                for cand in rows.get("candidates", [[]])[i] or []:
                    _update_image(h, cand)
    return h.hexdigest()[:FINGERPRINT_CHARS]


def check_split_identity(conn, dataset: str, split: str, fingerprint: str, source: str) -> bool:
    """Record or check the fingerprint of ``dataset``/``split`` (inside the caller's transaction).

    Returns True when newly recorded. Raises `labkit.store.schema.StoreError` when the name is
    taken by other content, naming both folders and the way out (another ``--dataset`` name).
    """
    row = conn.execute("SELECT fingerprint, source_dir FROM dataset_splits WHERE dataset = ? AND split = ?",
                       (dataset, split)).fetchone()
    if row is None:
        conn.execute("INSERT INTO dataset_splits (dataset, split, fingerprint, source_dir, registered_at) "
                     "VALUES (?, ?, ?, ?, ?)", (dataset, split, fingerprint, source, _now()))
        return True
    if row[0] != fingerprint:
        raise StoreError(
            f"dataset name {dataset!r} (split {split!r}) in this store belongs to other content: fingerprint {row[0]} "
            f"from {row[1]!r}, but {source!r} has fingerprint {fingerprint}. Two different datasets must not share "
            "samples: register this one under another name (--dataset NAME, or 'name' in its dataset.json), "
            "or use another store"
        )
    return False
