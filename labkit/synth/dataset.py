"""Write whole synthetic datasets (all cores, progress bar) and the default background gallery.

    from labkit.synth import make_dataset
    make_dataset("data/synth", train=1000, test=400, pseudo=2000, exploration=5000, size=224, seed=0)

or ``labkit synth --out DIR --train 1000 --test 400 ...``. Each split is cut into shards of
at most ``shard_size`` samples (one shard: ``split.parquet``; more: ``split-0000i-of-0000n``);
the shard layout depends only on the split sizes, never on the number of workers, so the
same arguments always produce the same files.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from labkit.data import save_split, write_manifest
from labkit.synth.sample import SynthConfig, render_sample, split_plan
from labkit.synth.scenes import random_scene, render_background

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
SPLIT_ARGS = {"train": "train", "test": "test", "pseudo_label": "pseudo", "exploration": "exploration"}

_COUNTER = None  # shared progress counters in worker processes: one slot per task, no lock needed


def _init_worker(counter):
    global _COUNTER
    _COUNTER = counter
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _render_shard(task: dict) -> dict:
    """Render samples [start, stop) of one split and save them as one Parquet file in a private folder."""

    config: SynthConfig = task["config"]
    plan = task["plan"]
    timings: dict = {}
    samples = []
    for offset, index in enumerate(range(task["start"], task["stop"])):
        focus, k = plan[offset]
        samples.append(render_sample(index, task["split"], config, focus, k, timings))
        if _COUNTER is not None:
            _COUNTER[task["id"]] = offset + 1
    t0 = time.process_time()
    tmp = Path(task["tmp"])
    save_split(samples, tmp, task["split"], shard=task["shard"])
    timings["write"] = time.process_time() - t0
    name = f"{task['split']}.parquet" if task["shard"] is None else \
        f"{task['split']}-{task['shard'][0]:05d}-of-{task['shard'][1]:05d}.parquet"
    return {"file": str(tmp / name), "name": name, "n": len(samples), "timings": timings}


def find_originals(originals_dir) -> list[Path]:
    """Image files in a folder of product photos (sorted, so the order is reproducible)."""
    root = Path(originals_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"originals folder {str(root)!r} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in originals folder {str(root)!r}")
    return files


def make_dataset(out, *, train: int = 0, test: int = 0, pseudo: int = 0, exploration: int = 0, size: int = 224,
                 seed: int = 0, workers: int | None = None, originals_dir=None, shard_size: int = 500,
                 progress: bool = True, **options) -> Path:
    """Draw the requested splits into ``out`` (Parquet in the lab's schema) and return the folder.

    ``workers``: processes (None = all cores; 1 = in this process). ``originals_dir``: a folder
    of product photos on plain backgrounds, used instead of drawn products (cut out by
    `labkit.segment.threshold_segment`). ``options``: any field of `SynthConfig`
    (``dimension_mix``, ``acceptable_counts``, ``severity``, ``secondary_rate``,
    ``kind_weights``, ``product_kinds``, ``png_compress_level``).
    Returns ``out``; timing totals are in ``make_dataset.last_timings``.
    """

    known = set(SynthConfig.__dataclass_fields__) - {"seed", "size", "originals"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"make_dataset got unknown option(s) {unknown}; expected SynthConfig fields {sorted(known)}")
    counts = {"train": train, "test": test, "pseudo_label": pseudo, "exploration": exploration}
    for split, n in counts.items():
        if n < 0:
            raise ValueError(f"--{SPLIT_ARGS[split]} must be >= 0, got {n}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    originals = tuple(str(p) for p in find_originals(originals_dir)) if originals_dir else ()
    config = SynthConfig(seed=seed, size=size, originals=originals, **options)
    if originals:
        # Fail early, naming the photo, if the segmenter cannot cut a product out of it.
        from labkit.synth.sample import _photo_product

        for path in originals:
            _photo_product(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp_root = out / f".synth-tmp-{os.getpid()}"
    tasks = []
    for split, n in counts.items():
        if n == 0:
            continue
        plan = split_plan(split, n, config)
        n_shards = math.ceil(n / shard_size)
        for i in range(n_shards):
            start, stop = i * n // n_shards, (i + 1) * n // n_shards
            tasks.append({"id": len(tasks), "split": split, "start": start, "stop": stop, "plan": plan[start:stop], "config": config,
                          "shard": None if n_shards == 1 else (i, n_shards), "tmp": str(tmp_root / f"task-{len(tasks)}")})
    total = sum(counts.values())
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(int(workers), len(tasks) or 1))
    results = []
    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="synth", unit="sample", disable=not progress or total == 0)
        if workers == 1:
            for task in tasks:
                results.append(_render_shard(task))
                bar.update(results[-1]["n"])
        else:
            import multiprocessing as mp

            # Linux: fork (no re-import of the caller's __main__, fast start; Arrow re-creates its
            # thread pools after a fork, as `datasets.map(num_proc=...)` relies on too).
            # Elsewhere fork is unsafe (macOS system libraries): spawn.
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            counter = ctx.RawArray("l", len(tasks))
            # Largest tasks first so the pool finishes together.
            order = sorted(tasks, key=lambda t: t["start"] - t["stop"])
            pool = ctx.Pool(workers, initializer=_init_worker, initargs=(counter,))
            try:
                pending = pool.map_async(_render_shard, order, chunksize=1)
                while not pending.ready():
                    pending.wait(0.25)
                    bar.update(sum(counter) - bar.n)
                results = pending.get()
                bar.update(sum(counter) - bar.n)
                pool.close()  # a clean shutdown: terminating workers would leak their semaphores
            except BaseException:
                pool.terminate()
                raise
            finally:
                pool.join()
        bar.close()
        written = {}
        for r in results:
            os.replace(r["file"], out / r["name"])
            written.setdefault(r["name"].split(".")[0].split("-")[0], set()).add(r["name"])
        # Drop files of an earlier run of the same split that this run did not rewrite.
        for split, names in written.items():
            for old in list(out.glob(f"{split}.parquet")) + list(out.glob(f"{split}-*-of-*.parquet")):
                if old.name not in names:
                    old.unlink()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    manifest = write_manifest(out)
    manifest["generator"] = {"name": "labkit.synth", "config": config.to_meta(),
                             "requested": {SPLIT_ARGS[s]: n for s, n in counts.items()}}
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    timings: dict = {}
    for r in results:
        for k, v in r["timings"].items():
            timings[k] = timings.get(k, 0.0) + v
    make_dataset.last_timings = timings
    return out


make_dataset.last_timings = {}


def background_gallery(n: int, size: int = 224, seed: int = 0):
    """``n`` scene backgrounds (support surface, wall, props, visible light) without any product:
    the default reference gallery for the FLUX generation pipeline. Deterministic in ``seed``."""
    import numpy as np
    from PIL import Image

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [Image.fromarray(render_background(random_scene(np.random.default_rng([seed, 5, i])), size)) for i in range(n)]
