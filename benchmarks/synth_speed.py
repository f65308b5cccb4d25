"""Speed of the procedural generator: samples (original + 4 candidates) per second per core.

    python benchmarks/synth_speed.py [--size 224] [--samples 300] [--workers 2]

Part 1 times one process drawing, PNG-encoding and writing (Parquet, schema validation
included) ``--samples`` samples and prints each phase per sample, with wall time and
process CPU time (CPU time is what a core spends: on a busy shared machine wall time
overstates it). Part 2 runs `make_dataset` with ``--workers`` processes and prints the
overall rate. Target: at least 50 samples per second per core at 224 px.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

TARGET = 50.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--workers", type=int, default=None, help="processes for part 2 (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from labkit.data import save_split
    from labkit.synth import SynthConfig, make_dataset, render_sample, split_plan

    config = SynthConfig(seed=args.seed, size=args.size)
    plan = split_plan("train", args.samples, config)
    render_sample(0, "train", config)  # warm caches (fonts, imports) outside the timing
    timings: dict = {}
    c0, w0 = time.process_time(), time.perf_counter()
    samples = [render_sample(i, "train", config, *plan[i], timings=timings) for i in range(args.samples)]
    c1, w1 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        save_split(samples, tmp, "train")
        c2, w2 = time.process_time(), time.perf_counter()
    n = args.samples
    draw, encode = timings["draw"], timings["encode"]
    write_cpu, write_wall = c2 - c1, w2 - w1
    cpu_total = (c2 - c0)
    print(f"synth speed, {args.size} px, {n} samples, seed {args.seed}, one process, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"  drawing   {1000 * draw / n:7.2f} ms CPU/sample (scene, product, defects)")
    print(f"  encoding  {1000 * encode / n:7.2f} ms CPU/sample (5 PNGs, level {config.png_compress_level})")
    print(f"  writing   {1000 * write_cpu / n:7.2f} ms CPU/sample (schema validation + Parquet), {1000 * write_wall / n:.2f} ms wall")
    rate_wall = n / (w2 - w0)
    rate_cpu = n / cpu_total
    print(f"  total     {rate_wall:7.1f} samples/s wall, {rate_cpu:.1f} samples/s per CPU-second "
          f"(target {TARGET:.0f}/s/core: {'met' if rate_cpu >= TARGET else 'NOT met'})")

    workers = args.workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_dataset(Path(tmp) / "ds", train=n * workers, size=args.size, seed=args.seed, workers=workers,
                     shard_size=max(1, n // 2), progress=False)
        dt = time.perf_counter() - t0
    print(f"make_dataset, {workers} workers, {n * workers} samples: {n * workers / dt:.1f} samples/s "
          f"= {n / dt:.1f} samples/s per worker (wall, includes pool start-up and writing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
