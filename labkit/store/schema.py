"""The annotation store's schema and input rules: versioned migrations, password hashing,
label validation and the hard-case file reader. Used by `labkit.store.AnnotationStore`
(which re-exports these names); nothing here opens a store by itself.

Migrations are ordered functions: ``MIGRATIONS[i]`` takes the schema from version ``i`` to
``i + 1`` inside one transaction; the ``schema_version`` table records what was applied.
To change the schema, append a function; never edit one that has shipped.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from labkit.data import answer_from_defects
from labkit.jsonl import read_rows
from labkit.metrics import LETTERS, AnswerError, canonical_answer
from labkit.verdicts import stated_answer


class StoreError(ValueError):
    """Bad input to the store (unknown annotator or sample, invalid label, ...)."""

# ----------------------------------------------------------------------------- migrations

def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run ;-separated statements inside the caller's transaction.

    (``executescript`` would COMMIT first and break the migration's atomicity.)
    """
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m1_core(conn: sqlite3.Connection) -> None:
    """Version 1: annotators, samples, append-only events."""
    _script(conn, 
        """
        CREATE TABLE annotators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            dataset TEXT NOT NULL,
            sample_id TEXT NOT NULL,
            split TEXT,
            source_dir TEXT,
            UNIQUE (dataset, sample_id)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sample INTEGER NOT NULL REFERENCES samples(id),
            annotator INTEGER NOT NULL REFERENCES annotators(id),
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('label', 'undo')),
            answer TEXT,
            defects TEXT,
            cot TEXT NOT NULL DEFAULT '',
            flag INTEGER NOT NULL DEFAULT 0,
            seconds REAL,
            retracts INTEGER REFERENCES events(id)
        );
        CREATE INDEX events_by_sample ON events (sample, annotator, id);
        """
    )


def _m2_hard_cases_and_notes(conn: sqlite3.Connection) -> None:
    """Version 2: hard cases from HCM mining; a free-text note on events (why flagged)."""
    _script(conn, 
        """
        CREATE TABLE hard_cases (
            sample INTEGER PRIMARY KEY REFERENCES samples(id),
            source TEXT,
            imported_at TEXT NOT NULL
        );
        ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT '';
        CREATE INDEX events_by_annotator ON events (annotator, id);
        """
    )


def _m3_append_only(conn: sqlite3.Connection) -> None:
    """Version 3: the database itself refuses to change or delete a label event (append-only)."""
    for op in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER events_no_{op.lower()} BEFORE {op} ON events "
            "BEGIN SELECT RAISE(ABORT, 'label events are append-only: add an undo event instead'); END"
        )


def _m4_provenance_blind_identity(conn: sqlite3.Connection) -> None:
    """Version 4: where a label's reasoning came from (``cot_source``: human, model or none) and
    whether the label was given blind (before its annotator saw anyone else's answer on the
    sample); ``reveals`` records when the app showed an annotator others' answers;
    ``dataset_splits`` records each registered split's content fingerprint
    (`labkit.store.datasets`)."""
    _script(conn,
        """
        ALTER TABLE events ADD COLUMN cot_source TEXT NOT NULL DEFAULT '';
        ALTER TABLE events ADD COLUMN blind INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE reveals (
            sample INTEGER NOT NULL REFERENCES samples(id),
            annotator INTEGER NOT NULL REFERENCES annotators(id),
            revealed_at TEXT NOT NULL,
            PRIMARY KEY (sample, annotator)
        );
        CREATE TABLE dataset_splits (
            dataset TEXT NOT NULL,
            split TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            source_dir TEXT,
            registered_at TEXT NOT NULL,
            PRIMARY KEY (dataset, split)
        );
        """
    )


# Ordered: MIGRATIONS[i] takes the schema from version i to version i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m1_core, _m2_hard_cases_and_notes, _m3_append_only, _m4_provenance_blind_identity,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in a database (0 for an empty one)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations missing up to ``target``, each in its own transaction. Returns the version.

    Safe when several processes open the same store at once: the version is re-read under
    the write lock (``BEGIN IMMEDIATE``) before a migration runs.
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise StoreError(f"unknown schema version {target}; this labkit knows 0..{SCHEMA_VERSION}")
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            current = schema_version(conn)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema version {current}, newer than this labkit ({SCHEMA_VERSION}); upgrade labkit"
                )
            if current >= target:
                conn.execute("COMMIT")
                return current
            MIGRATIONS[current](conn)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (current + 1, _now()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# ----------------------------------------------------------------------------- passwords

def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex); scrypt with n=2**14, r=8, p=1 (about 16 MB, ~50 ms)."""
    if not password:
        raise StoreError("empty password")
    salt = salt or secrets.token_bytes(16)
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against `hash_password` output."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


# ----------------------------------------------------------------------------- labels

MAX_COT_CHARS = 20_000  # longest reasoning a label may carry (the models write a few hundred)
COT_SOURCES = ("human", "model", "none")  # typed by the annotator / model text accepted as is / absent


def check_reasoning(cot: str, answer: str | None, cot_source: str = "human") -> str:
    """The provenance of a label's reasoning, after checking it; raises StoreError naming the problem.

    Refused: text over `MAX_COT_CHARS`; an unknown ``cot_source``; reasoning whose own final
    answer (`labkit.verdicts.stated_answer`) differs from the label's ``answer`` (the message
    names both and offers to drop the reasoning). Empty reasoning always has source ``none``.
    """
    if not isinstance(cot, str):
        raise StoreError(f"reasoning must be text, got {type(cot).__name__}")
    if len(cot) > MAX_COT_CHARS:
        raise StoreError(f"reasoning is {len(cot):,} characters; the limit is {MAX_COT_CHARS:,}. Shorten it")
    if not cot.strip():
        return "none"
    if cot_source not in COT_SOURCES:
        raise StoreError(f"unknown reasoning source {cot_source!r}; expected one of {', '.join(COT_SOURCES)}")
    stated = stated_answer(cot)
    if answer is not None and stated is not None and stated != answer:
        raise StoreError(
            f"the reasoning's own answer is {stated!r} but the label's answer is {answer!r}: "
            "fix the reasoning, or save without it (drop the reasoning)"
        )
    return "none" if cot_source == "none" else cot_source


def normalise_label(answer: str | None, candidate_defects, flag: bool) -> tuple[str | None, list[list[str]] | None]:
    """Canonical answer and defects of a label; raises StoreError naming the problem.

    With defects and no answer, the answer follows from the defects (candidates without tags
    are accepted). With both, they must agree. A label without an answer must be flagged
    (an annotator who cannot decide flags the sample).
    """
    defects = None
    if candidate_defects is not None:
        if not isinstance(candidate_defects, (list, tuple)) or len(candidate_defects) != 4:
            raise StoreError("candidate_defects must hold one list of tags per candidate (4)")
        defects = []
        for letter, tags in zip(LETTERS, candidate_defects):
            if tags is None or isinstance(tags, str) or not all(isinstance(t, str) and t.strip() for t in tags):
                raise StoreError(f"candidate {letter}: defect tags must be a list of non-empty strings")
            defects.append(sorted({t.strip() for t in tags}))
    if answer is not None:
        try:
            answer = canonical_answer(answer)
        except AnswerError as exc:
            raise StoreError(str(exc)) from exc
        if defects is not None and answer_from_defects(defects) != answer:
            raise StoreError(
                f"answer {answer!r} disagrees with the defect tags "
                f"(candidates without defects give {answer_from_defects(defects)!r})"
            )
    elif defects is not None:
        answer = answer_from_defects(defects)
    elif not flag:
        raise StoreError("a label needs an answer or defect tags (or flag=True to flag the sample without one)")
    return answer, defects


def read_hard_ids(path: str | os.PathLike) -> list[str]:
    """Hard sample ids from an HCM mining file, in file order, without duplicates.

    Accepted: a plain text list (one id per line, ``#`` comments); a JSON list of ids or of
    objects; a JSON object with a ``hard`` (or ``ids``) list; JSONL of objects. An object needs
    an ``id``; one with ``"hard": false`` is skipped (mining files may list every sample). A folder
    means its ``hard_cases.jsonl`` (the output of ``labkit mine-hard``, `labkit.hcm.mine_hard`).
    """
    path = Path(path)
    if path.is_dir():  # a `labkit mine-hard` run folder
        path = path / "hard_cases.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"hard-case file {str(path)!r} does not exist")
    text = path.read_text()
    stripped = text.strip()
    items: list = []
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
            if isinstance(data, dict):
                if "id" in data:
                    items = [data]
                else:
                    items = data.get("hard", data.get("ids"))
                    if not isinstance(items, list):
                        raise StoreError(f"{path}: a JSON object needs a 'hard' or 'ids' list")
            else:
                items = data
        except json.JSONDecodeError:
            try:
                items = read_rows(path)  # JSON Lines
            except ValueError as exc:
                raise StoreError(str(exc)) from exc
    else:
        items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        items = [i for i in items if i]
    out: list[str] = []
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        if isinstance(item, dict):
            if "id" not in item:
                raise StoreError(f"{path}: entry {n} has no 'id'")
            if not item.get("hard", True):
                continue
            item = item["id"]
        if not isinstance(item, (str, int)) or str(item) == "":
            raise StoreError(f"{path}: entry {n} is not a sample id ({item!r})")
        if str(item) not in seen:
            seen.add(str(item))
            out.append(str(item))
    return out
