"""`AnnotationStore`: the store's public class, one SQLite file of labels (see `labkit.store`).

It joins the layers below it: `labkit.store.core.StoreCore` (connection, annotators, samples,
label events, current labels), `labkit.store.hard` (hard-case marks from HCM mining) and
`labkit.store.queries` (queues, progress, agreement, adjudication, export), so one object
serves the app, the CLI and the notebooks. Imports run one way: core <- hard, queries <- store.

    >>> store = AnnotationStore("data/annotations.sqlite")        # doctest: +SKIP
    >>> store.queue("unlabelled", dataset="synth", annotator="ana")          # doctest: +SKIP
"""
from __future__ import annotations

import os
from typing import Iterable

from labkit.store.hard import import_hard_cases, unmark_hard
from labkit.store.queries import adjudicate, agreement, export_split, progress, queue
from labkit.store.core import SampleKey, StoreCore


class AnnotationStore(StoreCore):
    """A multi-annotator label store in one SQLite file (see `labkit.store`).

    Safe to share between threads (one connection per thread) and processes (SQLite locking);
    after a fork the child opens its own connection.
    """

    # -- hard cases (labkit.store.hard)
    def import_hard_cases(self, path: str | os.PathLike, dataset: str, source: str | None = None) -> int:
        """Mark samples as hard from an HCM mining file (see `read_hard_ids` for the formats).

        Every id must be a registered sample of ``dataset``. Returns how many were newly marked.
        """
        return import_hard_cases(self, path, dataset, source)

    def unmark_hard(self, dataset: str, sample_ids: Iterable[str]) -> int:
        """Remove the hard mark of these samples (unknown or unmarked ids are ignored); returns how many."""
        return unmark_hard(self, dataset, sample_ids)

    # -- queues, progress, agreement, export (labkit.store.queries)
    def queue(self, name: str, dataset: str | None = None, annotator: str | None = None,
              limit: int | None = None) -> list[SampleKey]:
        """Samples in a queue, in registration order. See `labkit.store.queries.queue`."""
        return queue(self, name, dataset=dataset, annotator=annotator, limit=limit)

    def progress(self, dataset: str | None = None) -> dict:
        return progress(self, dataset=dataset)

    def agreement(self, dataset: str | None = None) -> dict:
        return agreement(self, dataset=dataset)

    def adjudicate(self, dataset: str | None = None) -> dict:
        return adjudicate(self, dataset=dataset)

    def export_split(self, dataset: str, out_dir: str | os.PathLike, split: str = "train", **kw) -> dict:
        return export_split(self, dataset, out_dir, split=split, **kw)
