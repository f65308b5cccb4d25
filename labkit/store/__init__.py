"""The annotation store: one SQLite file that the labelling app, the CLI and training share.

What it holds (``data/annotations.sqlite`` by default):

- **annotators** (name, optional scrypt password hash for the app's login);
- **samples**, keyed by ``(dataset, sample_id)``, with the split and the dataset folder they
  come from (so adjudicated labels can be exported with their images);
- **label events**, append-only: who, when, answer (canonical, via
  `labkit.metrics.canonical_answer`), per-candidate defect tags, CoT text and where it came
  from (``cot_source``: human, model or none), a flag, seconds spent, and whether the label
  was given *blind* (before the annotator was shown anyone else's answer on that sample).
  An *undo* is itself an event that retracts the annotator's previous label, and a
  *retraction* (`AnnotationStore.retract`, ``labkit store retract EVENT_ID``) is an undo event
  aimed at one given label; nothing is ever updated or deleted (database triggers refuse it),
  so the full history stays auditable;
- **hard cases** imported from HCM mining (a mark can be removed: `unmark_hard`);
- **dataset identity**: each registered split's content fingerprint, so two different folders
  with the same name never share samples.

The *current label* of a sample for one annotator is that annotator's latest label event that
no undo retracted. Queues (``unlabelled``, ``hard``, ``flagged``, ``disagreements``), progress
counts, agreement (Fleiss' kappa per candidate, exact-answer agreement) and the export of
adjudicated labels (majority vote; ties are flagged and not exported) as a dataset split are
computed from those current labels.

Durability: WAL journal, ``synchronous=FULL``, a busy timeout, and every write in one
``BEGIN IMMEDIATE`` transaction, so concurrent writer processes serialise safely and a process
killed mid-write loses at most its uncommitted event. The schema is versioned
(``schema_version`` table); `MIGRATIONS` are ordered functions applied on open.

Modules, lowest first (each imports only those above it):

- `labkit.store.schema`: `StoreError`, migrations, password hashing, the label rules
  (`normalise_label`; `check_reasoning`: at most `MAX_COT_CHARS` characters, never reasoning
  whose own final answer contradicts the label) and the hard-case file reader;
- `labkit.store.datasets`: dataset names and content fingerprints;
- `labkit.store.core`: `StoreCore` (connection, annotators, samples, events, current labels)
  and the shared types `SampleKey`, `LabelEvent`, `QUEUES`;
- `labkit.store.hard`: marking and unmarking hard cases;
- `labkit.store.queries`: queues, progress, agreement, adjudication, export for training;
- `labkit.store.store`: `AnnotationStore`, the public class joining them.

This package re-exports the public names, so ``from labkit.store import AnnotationStore`` works.

    >>> store = AnnotationStore("data/annotations.sqlite")        # doctest: +SKIP
    >>> store.add_annotator("ana", password="s3cret")              # doctest: +SKIP
    >>> store.register_split("data/synth", "train")                # doctest: +SKIP
    >>> store.add_label("ana", "synth", "s0001", answer="AC", seconds=12.5)  # doctest: +SKIP
    >>> store.queue("unlabelled", dataset="synth", annotator="ana")          # doctest: +SKIP

Command line: ``labkit store --help``.
"""
from labkit.store.core import DEFAULT_PATH, QUEUES, LabelEvent, SampleKey, StoreCore
from labkit.store.datasets import FINGERPRINT_CHARS, check_split_identity, dataset_name, split_fingerprint
from labkit.store.queries import Adjudication, fleiss_kappa
from labkit.store.schema import (
    COT_SOURCES,
    MAX_COT_CHARS,
    MIGRATIONS,
    SCHEMA_VERSION,
    StoreError,
    check_password,
    check_reasoning,
    hash_password,
    migrate,
    normalise_label,
    read_hard_ids,
    schema_version,
)
from labkit.store.store import AnnotationStore

__all__ = [
    "COT_SOURCES", "DEFAULT_PATH", "FINGERPRINT_CHARS", "MAX_COT_CHARS", "MIGRATIONS", "QUEUES", "SCHEMA_VERSION",
    "Adjudication", "AnnotationStore", "LabelEvent", "SampleKey", "StoreCore", "StoreError", "check_password",
    "check_reasoning", "check_split_identity", "dataset_name", "fleiss_kappa", "hash_password", "migrate",
    "normalise_label", "read_hard_ids", "schema_version", "split_fingerprint",
]
