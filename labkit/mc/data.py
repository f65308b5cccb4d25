"""Prepared multiple-choice folders: the seeded 1:1 split, storage, and `prepare`.

`prepare` reads a benchmark with `labkit.mc.sources.load_benchmark` and writes a folder::

    OUT/train.parquet   the train half (absent with protocol "all-test")
    OUT/test.parquet    the test half
    OUT/dataset.json    {"kind": "mc", benchmark, source, published_split, protocol, seed,
                         split sizes, categories per split, skipped rows}

The Parquet files use `mc_features` (id, benchmark, question, options, images, answer,
category, n_options, meta). ``"kind": "mc"`` in dataset.json is how the rest of the lab
tells an MC folder from a screening one (`is_mc_dataset`).

The split (`split_items`) is the paper's 1:1 protocol, seeded and deterministic: per
category (BLINK subtask, MuirBench task), groups of items are shuffled with the seed and
each group goes to the half that is smaller so far. A group is one item, or MuirBench's
answerable/unanswerable counterparts (``counterpart_idx``), which share images and would
leak across the split if separated.

Run ``labkit mc-prepare --benchmark realworldqa --source DIR_OR_HUB_ID --out data/mc/rwqa --seed 0``.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from labkit.mc.sources import PROTOCOLS, load_benchmark
from labkit.mc.metrics import random_baseline_mc
from labkit.mc.rows import MCItem


# ----------------------------------------------------------------------------- the 1:1 split

def _units(items: list[MCItem]) -> list[list[MCItem]]:
    """Groups that must stay together: MuirBench counterparts (they share images)."""
    parent = {it.id: it.id for it in items}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for it in items:
        other = it.meta.get("counterpart_idx")
        if other is not None and str(other) in parent:
            a, b = find(it.id), find(str(other))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[MCItem]] = {}
    for it in items:
        groups.setdefault(find(it.id), []).append(it)
    return [groups[k] for k in sorted(groups)]


def split_items(items: list[MCItem], seed: int = 0) -> tuple[list[MCItem], list[MCItem]]:
    """The paper's seeded 1:1 train/test split, deterministic for a given seed and items
    (the input order does not matter).

    Counterpart groups (`_units`) are stratified by the category of their first item; within a
    category they are shuffled with ``seed``, ordered largest first (a stable sort, so equal
    sizes keep the shuffled order) and each goes to the half with fewer items of that
    category so far; a tie goes to the half with fewer items overall, then to test.
    """
    by_cat: dict[str, list[list[MCItem]]] = {}
    for unit in _units(sorted(items, key=lambda it: it.id)):
        by_cat.setdefault(unit[0].category or "", []).append(unit)
    train: list[MCItem] = []
    test: list[MCItem] = []
    for cat in sorted(by_cat):
        units = by_cat[cat]
        random.Random(f"mc-split/{seed}/{cat}").shuffle(units)
        units.sort(key=len, reverse=True)
        cat_train = cat_test = 0
        for unit in units:
            to_test = cat_test < cat_train or (cat_test == cat_train and len(test) <= len(train))
            (test if to_test else train).extend(unit)
            if to_test:
                cat_test += len(unit)
            else:
                cat_train += len(unit)
    return sorted(train, key=lambda it: it.id), sorted(test, key=lambda it: it.id)


# ----------------------------------------------------------------------------- storage

def mc_features():
    """The `datasets.Features` of a prepared MC split."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "benchmark": Value("string"),
            "question": Value("string"),
            "options": List(Value("string")),
            "images": List(Image()),
            "answer": Value("string"),
            "category": Value("string"),
            "n_options": Value("int32"),
            "meta": Value("string"),
        }
    )


def save_mc(items: list[MCItem], root: str | os.PathLike, split: str) -> Path:
    """Write ``root/split.parquet`` (atomically: a temporary file, then a rename)."""
    from datasets import Dataset

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ds = Dataset.from_list([it.to_row() for it in items], features=mc_features())
    dest = root / f"{split}.parquet"
    tmp = root / f"{split}.parquet.tmp"
    ds.to_parquet(str(tmp))
    os.replace(tmp, dest)
    return dest


def is_mc_dataset(root: str | os.PathLike) -> bool:
    """True for a folder written by `prepare` (its ``dataset.json`` says ``"kind": "mc"``)."""
    path = Path(root) / "dataset.json"
    try:
        return json.loads(path.read_text()).get("kind") == "mc"
    except (OSError, ValueError):
        return False


def load_mc(root: str | os.PathLike, split: str):
    """One split of a prepared MC folder as a `datasets.Dataset` (images decode to PIL)."""
    from datasets import Dataset

    root = Path(root)
    f = root / f"{split}.parquet"
    if not f.exists():
        have = sorted(p.stem for p in root.glob("*.parquet")) if root.is_dir() else []
        raise FileNotFoundError(f"no MC split {split!r} in {str(root)!r}; it has: {', '.join(have) or 'nothing'}")
    try:
        return Dataset.from_parquet(str(f), features=mc_features())
    except Exception as exc:
        raise ValueError(f"{f}: not a prepared MC split ({exc}); make one with `labkit mc-prepare`") from exc


def prepare(
    benchmark: str,
    source: str | os.PathLike | None,
    out: str | os.PathLike,
    seed: int = 0,
    protocol: str = "split",
    split: str | None = None,
    configs: list[str] | None = None,
    limit: int | None = None,
    check_images: bool = True,
    progress: bool = False,
) -> dict:
    """Load a benchmark and write its train/test splits + ``dataset.json``; return the manifest."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    out = Path(out)
    if out.exists() and not is_mc_dataset(out) and (any(out.glob("*.parquet")) or (out / "dataset.json").exists()):
        # Never overwrite a screening dataset (or anything else) that happens to live there.
        raise ValueError(f"{out} already holds a dataset that is not a prepared MC folder; choose another --out")
    loaded = load_benchmark(benchmark, source, split=split, configs=configs, check_images=check_images, limit=limit,
                            progress=progress)
    if protocol == "split":
        train, test = split_items(loaded.items, seed)
    else:
        train, test = [], sorted(loaded.items, key=lambda it: it.id)
    save_mc(test, out, "test")
    if train:
        save_mc(train, out, "train")
    elif (out / "train.parquet").exists():
        (out / "train.parquet").unlink()  # a stale train split from an earlier protocol would mislead

    def cats(items):
        c: dict[str, int] = {}
        for it in items:
            c[it.category or "all"] = c.get(it.category or "all", 0) + 1
        return dict(sorted(c.items()))

    manifest = {
        "kind": "mc",
        "schema_version": 1,
        "name": out.name,
        "benchmark": benchmark,
        "source": str(loaded.source),
        "published_split": loaded.split,
        "protocol": protocol,
        "seed": seed,
        "limit": limit,
        "splits": {"train": len(train), "test": len(test)} if train else {"test": len(test)},
        "categories": {"train": cats(train), "test": cats(test)},
        "skipped": len(loaded.skipped),
        "skipped_rows": loaded.skipped[:50],
    }
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def mc_info(root: str | os.PathLike) -> dict:
    """Per split of a prepared MC folder: size, categories, answer letters, option counts, random baseline."""
    import pyarrow.parquet as pq

    root = Path(root)
    manifest = json.loads((root / "dataset.json").read_text())
    info = {"benchmark": manifest.get("benchmark"), "protocol": manifest.get("protocol"), "seed": manifest.get("seed"),
            "published_split": manifest.get("published_split"), "skipped": manifest.get("skipped", 0), "splits": {}}
    for f in sorted(root.glob("*.parquet")):
        table = pq.read_table(f, columns=["answer", "category", "n_options"])
        answers = table.column("answer").to_pylist()
        n_opts = table.column("n_options").to_pylist()
        cats: dict[str, int] = {}
        for c in table.column("category").to_pylist():
            cats[c or "all"] = cats.get(c or "all", 0) + 1
        letters: dict[str, int] = {}
        for a in answers:
            letters[a] = letters.get(a, 0) + 1
        info["splits"][f.stem] = {
            "n": table.num_rows, "categories": dict(sorted(cats.items())), "answers": dict(sorted(letters.items())),
            "options": [min(n_opts), max(n_opts)] if n_opts else None,
            "random_baseline": random_baseline_mc(n_opts) if n_opts else None,
        }
    return info


def print_mc_info(root: str | os.PathLike, as_json: bool = False) -> int:
    """`labkit info` for a prepared MC folder."""
    info = mc_info(root)
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"MC dataset {root}: {info['benchmark']} ({info['published_split']} split, protocol {info['protocol']}, "
          f"seed {info['seed']}; {info['skipped']} rows skipped)")
    print(f"{'split':<8}{'n':>6}{'options':>9}{'random %':>10}  answers / categories")
    for split, s in info["splits"].items():
        opts = "-" if not s["options"] else f"{s['options'][0]}-{s['options'][1]}"
        rnd = "-" if s["random_baseline"] is None else f"{s['random_baseline']:.2f}"
        print(f"{split:<8}{s['n']:>6}{opts:>9}{rnd:>10}  {', '.join(f'{k}={v}' for k, v in s['answers'].items())}")
        print(f"{'':<33}{', '.join(f'{k}={v}' for k, v in s['categories'].items())}")
    return 0
