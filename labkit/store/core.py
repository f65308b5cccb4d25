"""The store's base: the SQLite connection, annotators, samples and the append-only label events.

`StoreCore` opens the file (WAL journal, ``synchronous=FULL``, a busy timeout, every write in
one ``BEGIN IMMEDIATE`` transaction, migrations applied on open: `labkit.store.schema`) and
writes and reads the raw facts: annotators, samples (``register_split`` records each split's
content fingerprint, `labkit.store.datasets`), label events, undos, retractions, reveals, and
each annotator's *current label* per sample. The views computed from those current labels
(queues, progress, agreement, adjudication, export: `labkit.store.queries`) and the hard-case
marks (`labkit.store.hard`) sit above this module; `labkit.store.store.AnnotationStore` joins
them. Also here: the shared types `SampleKey`, `LabelEvent` and the queue names `QUEUES`.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from labkit.data import _split_files
from labkit.store.datasets import check_split_identity, dataset_name, split_fingerprint
from labkit.store.schema import (
    StoreError,
    _now,
    check_password,
    check_reasoning,
    hash_password,
    migrate,
    normalise_label,
    schema_version,
)

DEFAULT_PATH = "data/annotations.sqlite"
QUEUES = ("unlabelled", "hard", "flagged", "disagreements")


class SampleKey(NamedTuple):
    dataset: str
    sample_id: str


@dataclass
class LabelEvent:
    """One label event as stored (``kind`` is ``label`` or ``undo``)."""

    event_id: int
    dataset: str
    sample_id: str
    annotator: str
    created_at: str
    kind: str
    answer: str | None = None
    candidate_defects: list[list[str]] | None = None
    cot: str = ""
    flag: bool = False
    note: str = ""
    seconds: float | None = None
    retracts: int | None = None
    cot_source: str = ""
    blind: bool = True


_EVENT_COLUMNS = ("e.id, s.dataset, s.sample_id, a.name, e.created_at, e.kind, e.answer, e.defects, e.cot, "
                  "e.flag, e.note, e.seconds, e.retracts, e.cot_source, e.blind")


# ----------------------------------------------------------------------------- the store

class StoreCore:
    """The connection and the raw facts of an annotation store (see the module docstring);
    use `labkit.store.AnnotationStore`, which adds the queues, agreement, export and hard cases.

    Safe to share between threads (one connection per thread) and processes (SQLite locking);
    after a fork the child opens its own connection.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH, timeout: float = 60.0, synchronous: str = "FULL"):
        self.path = Path(path)
        self.timeout = timeout
        self.synchronous = synchronous
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        migrate(conn)

    # -- connection
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) and never implicit.
        conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def _write(self, fn):
        """Run ``fn(conn)`` in one immediate transaction (all or nothing)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read-only SQL (for notebooks and reports)."""
        return self._conn().execute(sql, params).fetchall()

    @property
    def version(self) -> int:
        return schema_version(self._conn())

    def integrity_check(self) -> str:
        """``ok`` when SQLite finds the file consistent."""
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0]

    # -- annotators
    def add_annotator(self, name: str, password: str | None = None) -> int:
        """Add an annotator (idempotent when no password is given); returns its id.

        With a password, an existing annotator's password is (re)set.
        """
        name = (name or "").strip()
        if not name:
            raise StoreError("annotator name is empty")
        pw = hash_password(password) if password else None

        def fn(conn):
            row = conn.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
            if row:
                if pw:
                    conn.execute("UPDATE annotators SET password_hash = ? WHERE id = ?", (pw, row[0]))
                return row[0]
            return conn.execute(
                "INSERT INTO annotators (name, password_hash, created_at) VALUES (?, ?, ?)", (name, pw, _now())
            ).lastrowid

        return self._write(fn)

    def annotators(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM annotators ORDER BY id")]

    def has_password(self, name: str) -> bool:
        row = self.query("SELECT password_hash FROM annotators WHERE name = ?", (name,))
        return bool(row and row[0][0])

    def verify_annotator(self, name: str, password: str | None = None) -> bool:
        """True when the annotator exists and the password matches (no password set: any/none is fine)."""
        row = self.query("SELECT password_hash FROM annotators WHERE name = ?", ((name or "").strip(),))
        if not row:
            return False
        stored = row[0][0]
        if not stored:
            return True
        return bool(password) and check_password(password, stored)

    def _annotator_id(self, conn, name: str) -> int:
        row = conn.execute("SELECT id FROM annotators WHERE name = ?", ((name or "").strip(),)).fetchone()
        if not row:
            raise StoreError(f"unknown annotator {name!r}; add it first (labkit store add-annotator)")
        return row[0]

    # -- samples
    def register_samples(
        self, dataset: str, sample_ids: Iterable[str], split: str | None = None, source_dir: str | os.PathLike | None = None
    ) -> int:
        """Register sample ids of a dataset (existing ones are kept); returns how many were new."""
        if not dataset:
            raise StoreError("dataset name is empty")
        src = str(Path(source_dir).resolve()) if source_dir else None
        ids = [str(s) for s in sample_ids]
        if any(not s for s in ids):
            raise StoreError("empty sample id")

        def fn(conn):
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO samples (dataset, sample_id, split, source_dir) VALUES (?, ?, ?, ?)",
                [(dataset, s, split, src) for s in ids],
            )
            return conn.total_changes - before

        return self._write(fn)

    def register_split(self, dataset_dir: str | os.PathLike, split: str, dataset: str | None = None) -> int:
        """Register every sample of a dataset folder's split (ids read from Parquet, images untouched).

        ``dataset`` defaults to the folder's manifest name (``dataset.json``) or its folder name.
        Returns how many samples were new.
        """
        import pyarrow.parquet as pq  # lazy: only registering reads Parquet; opening a store stays light

        root = Path(dataset_dir)
        files = _split_files(root, split)
        if not files:
            raise FileNotFoundError(f"no split {split!r} in {str(root)!r}")
        ids: list[str] = []
        for f in files:
            ids += [str(x) for x in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
        name = dataset or dataset_name(root)
        fingerprint = split_fingerprint(root, split)
        # The identity check first: a refused dataset leaves no sample behind.
        self._write(lambda conn: check_split_identity(conn, name, split, fingerprint, str(root.resolve())))
        return self.register_samples(name, ids, split=split, source_dir=root)

    def fingerprints(self, dataset: str | None = None) -> dict[tuple[str, str], str]:
        """Recorded content fingerprints by ``(dataset, split)``."""
        sql, params = "SELECT dataset, split, fingerprint FROM dataset_splits", ()
        if dataset:
            sql, params = sql + " WHERE dataset = ?", (dataset,)
        return {(d, sp): fp for d, sp, fp in self.query(sql, params)}

    def datasets(self) -> list[str]:
        return [r[0] for r in self.query("SELECT DISTINCT dataset FROM samples ORDER BY dataset")]

    def samples(self, dataset: str | None = None) -> list[SampleKey]:
        sql, params = "SELECT dataset, sample_id FROM samples", ()
        if dataset:
            sql, params = sql + " WHERE dataset = ?", (dataset,)
        return [SampleKey(*r) for r in self.query(sql + " ORDER BY id", params)]

    def sample_source(self, dataset: str, sample_id: str) -> tuple[str | None, str | None]:
        """``(source_dir, split)`` a sample was registered from (where its images are)."""
        row = self.query("SELECT source_dir, split FROM samples WHERE dataset = ? AND sample_id = ?", (dataset, sample_id))
        if not row:
            raise StoreError(f"unknown sample {sample_id!r} in dataset {dataset!r}; register it first")
        return row[0][0], row[0][1]

    def _sample_pk(self, conn, dataset: str, sample_id: str) -> int:
        row = conn.execute("SELECT id FROM samples WHERE dataset = ? AND sample_id = ?", (dataset, sample_id)).fetchone()
        if not row:
            raise StoreError(f"unknown sample {sample_id!r} in dataset {dataset!r}; register it first")
        return row[0]

    # -- events
    def add_label(
        self,
        annotator: str,
        dataset: str,
        sample_id: str,
        answer: str | None = None,
        candidate_defects: list[list[str]] | None = None,
        cot: str = "",
        flag: bool = False,
        seconds: float | None = None,
        note: str = "",
        cot_source: str = "human",
    ) -> int:
        """Append one label event; returns its event id.

        See `normalise_label` for the label rules and `check_reasoning` for the reasoning's
        (length, provenance ``cot_source``: human, model or none; no contradiction with
        ``answer``). The event is *blind* unless the annotator was shown others' answers on
        this sample before (`record_reveal`).
        """
        answer, defects = normalise_label(answer, candidate_defects, flag)
        if seconds is not None and (seconds != seconds or seconds < 0):
            raise StoreError(f"seconds must be a non-negative number, got {seconds!r}")
        cot = cot or ""
        cot_source = check_reasoning(cot, answer, cot_source)

        def fn(conn):
            aid = self._annotator_id(conn, annotator)
            pk = self._sample_pk(conn, dataset, sample_id)
            seen = conn.execute("SELECT 1 FROM reveals WHERE sample = ? AND annotator = ?", (pk, aid)).fetchone()
            return conn.execute(
                "INSERT INTO events (sample, annotator, created_at, kind, answer, defects, cot, flag, seconds, note, "
                "cot_source, blind) VALUES (?, ?, ?, 'label', ?, ?, ?, ?, ?, ?, ?, ?)",
                (pk, aid, _now(), answer, json.dumps(defects) if defects is not None else None,
                 cot, int(bool(flag)), seconds, note or "", cot_source, int(not seen)),
            ).lastrowid

        return self._write(fn)

    def undo(self, annotator: str, dataset: str | None = None, sample_id: str | None = None) -> SampleKey | None:
        """Retract the annotator's latest still-standing label (on one sample, or anywhere).

        Appends an ``undo`` event; repeated undos walk further back. Returns the sample whose
        label was retracted, or None when there was nothing to undo.
        """
        def fn(conn):
            aid = self._annotator_id(conn, annotator)
            sql = (
                "SELECT e.id, s.dataset, s.sample_id, e.sample FROM events e JOIN samples s ON s.id = e.sample "
                "WHERE e.annotator = ? AND e.kind = 'label' "
                "AND e.id NOT IN (SELECT retracts FROM events WHERE kind = 'undo' AND retracts IS NOT NULL)"
            )
            params: tuple = (aid,)
            if sample_id is not None:
                if dataset is None:
                    raise StoreError("undo on one sample needs its dataset")
                sql += " AND e.sample = ?"
                params += (self._sample_pk(conn, dataset, sample_id),)
            row = conn.execute(sql + " ORDER BY e.id DESC LIMIT 1", params).fetchone()
            if not row:
                return None
            conn.execute(
                "INSERT INTO events (sample, annotator, created_at, kind, retracts) VALUES (?, ?, ?, 'undo', ?)",
                (row[3], aid, _now(), row[0]),
            )
            return SampleKey(row[1], row[2])

        return self._write(fn)

    def retract(self, event_id: int, by: str, reason: str = "") -> SampleKey:
        """Retract one label event (an append-only undo event aimed at it, with ``reason`` as its
        note); the sample's current label for that annotator falls back to their previous one.
        ``by`` names who retracts (an annotator in the store, e.g. a reviewer). Returns the sample."""
        def fn(conn):
            row = conn.execute(
                "SELECT e.sample, s.dataset, s.sample_id, e.kind FROM events e JOIN samples s ON s.id = e.sample "
                "WHERE e.id = ?", (int(event_id),)).fetchone()
            if not row or row[3] != "label":
                raise StoreError(f"event {event_id} is not a label event of this store")
            if conn.execute("SELECT 1 FROM events WHERE kind = 'undo' AND retracts = ?", (int(event_id),)).fetchone():
                raise StoreError(f"label event {event_id} is already retracted")
            aid = self._annotator_id(conn, by)
            conn.execute(
                "INSERT INTO events (sample, annotator, created_at, kind, retracts, note) VALUES (?, ?, ?, 'undo', ?, ?)",
                (row[0], aid, _now(), int(event_id), f"retract: {reason}".strip()),
            )
            return SampleKey(row[1], row[2])

        return self._write(fn)

    def record_reveal(self, annotator: str, dataset: str, sample_id: str) -> None:
        """Note that ``annotator`` was shown other annotators' answers on this sample: their
        later labels on it are not blind and stay out of the agreement figures."""
        def fn(conn):
            conn.execute("INSERT OR IGNORE INTO reveals (sample, annotator, revealed_at) VALUES (?, ?, ?)",
                         (self._sample_pk(conn, dataset, sample_id), self._annotator_id(conn, annotator), _now()))

        self._write(fn)

    def events(self, dataset: str | None = None, sample_id: str | None = None, annotator: str | None = None) -> list[LabelEvent]:
        """The event history (oldest first), optionally filtered."""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e JOIN samples s ON s.id = e.sample "
            "JOIN annotators a ON a.id = e.annotator WHERE 1=1"
        )
        params: list = []
        for col, val in (("s.dataset", dataset), ("s.sample_id", sample_id), ("a.name", annotator)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        return [_event(r) for r in self.query(sql + " ORDER BY e.id", tuple(params))]

    def current_labels(self, dataset: str | None = None, sample_id: str | None = None,
                       blind_only: bool = False) -> dict[SampleKey, dict[str, LabelEvent]]:
        """Per sample, per annotator: the latest label event that no undo retracted.

        ``blind_only``: the latest standing *blind* label instead (given before the annotator
        saw others' answers on the sample); the agreement figures use these.
        """
        blind = " AND blind = 1" if blind_only else ""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e JOIN samples s ON s.id = e.sample "
            "JOIN annotators a ON a.id = e.annotator "
            f"WHERE e.id IN (SELECT MAX(id) FROM events x WHERE kind = 'label'{blind} AND id NOT IN "
            "  (SELECT retracts FROM events WHERE kind = 'undo' AND retracts IS NOT NULL) GROUP BY sample, annotator)"
        )
        params: list = []
        if dataset is not None:
            sql += " AND s.dataset = ?"
            params.append(dataset)
        if sample_id is not None:
            sql += " AND s.sample_id = ?"
            params.append(sample_id)
        out: dict[SampleKey, dict[str, LabelEvent]] = {}
        for r in self.query(sql + " ORDER BY s.id, a.id", tuple(params)):
            ev = _event(r)
            out.setdefault(SampleKey(ev.dataset, ev.sample_id), {})[ev.annotator] = ev
        return out


def _event(r) -> LabelEvent:
    return LabelEvent(
        event_id=r[0], dataset=r[1], sample_id=r[2], annotator=r[3], created_at=r[4], kind=r[5], answer=r[6],
        candidate_defects=json.loads(r[7]) if r[7] else None, cot=r[8] or "", flag=bool(r[9]), note=r[10] or "",
        seconds=r[11], retracts=r[12], cot_source=r[13] or "", blind=bool(r[14]),
    )
