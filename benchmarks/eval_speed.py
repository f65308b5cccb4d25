"""Benchmark: batched evaluation against a per-sample ``generate`` loop, same model and data.

Both paths render the same CoT screening prompts with the same 5 images per sample and
generate greedily with the same length limit; the per-sample loop calls ``model.generate``
once per sample (batch 1), the batched path ``batch_size`` samples at a time with left
padding (`labkit.infer.generate_responses`). Prints samples/s of each and the ratio.
Target: at least 3x on CPU at batch size 8.

Run: ``python benchmarks/eval_speed.py [--model DIR] [--data DIR] [--n 32] [--batch-size 8]``
(without ``--model`` it builds the ``small`` InternVL screener in a temporary folder;
without ``--data`` it draws ``--n`` synthetic test samples with `labkit.synth` when present,
else solid-colour samples).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _data(tmp: Path, n: int) -> Path:
    try:
        from labkit.synth import make_dataset
    except ImportError:
        make_dataset = None
    if make_dataset is not None:
        out = tmp / "synth"
        make_dataset(out, train=0, test=n, pseudo=0, exploration=0, size=64, seed=0, workers=1)
        return out
    from PIL import Image

    from labkit.data import save_split

    colours = ["red", "blue", "green", "gray", "orange", "purple"]
    samples = []
    for i in range(n):
        samples.append(dict(
            id=f"b{i:04d}", original=Image.new("RGB", (64, 64), "white"),
            candidates=[Image.new("RGB", (64, 64), colours[(i + k) % len(colours)]) for k in range(4)],
            answer="A", dimension="normal", candidate_defects=[[], ["appearance_deformation"]] + [["physical_shadow"]] * 2,
            split="test", source="synthetic",
        ))
    save_split(samples, tmp / "solid", "test")
    return tmp / "solid"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: build the small InternVL screener)")
    ap.add_argument("--arch", default="internvl", choices=("internvl", "qwen2_5_vl"), help="arch to build without --model")
    ap.add_argument("--data", help="dataset folder (default: draw synthetic samples)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=32, help="samples")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steady on a shared machine; 0: torch's choice)")
    args = ap.parse_args()

    import torch

    from labkit.conversions import Conversion, to_grpo_row
    from labkit.data import load_split
    from labkit.infer import generate_responses
    from labkit.models import build_model, count_parameters, load
    from labkit.prompts import screening_prompt

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = args.model or build_model(args.arch, "small", tmp / "model", seed=0)
        data = args.data or _data(tmp, args.n)
        model, processor = load(model_path, device="cpu")
        ds = load_split(data, args.split)
        rows = [to_grpo_row(ds[i], Conversion()) for i in range(min(args.n, len(ds)))]
    prompt = screening_prompt("cot", "separate", "train")
    items = [(r["images"], prompt) for r in rows]
    # Same work on both paths: an untrained model rarely stops early, a trained one might,
    # so every reply is forced to the full length.
    gen = dict(max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens, progress=False)
    generate_responses(model, processor, items[:2], batch_size=2, **gen)  # warm-up
    # The two paths alternate chunk by chunk (order flipped each time), so load from other
    # processes on a shared machine hits both alike instead of skewing the ratio.
    per_sample, batched, loop_s, batch_s = [], [], 0.0, 0.0
    for k, start in enumerate(range(0, len(items), args.batch_size)):
        chunk = items[start:start + args.batch_size]
        for path in ((0, 1) if k % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            if path == 0:
                per_sample += generate_responses(model, processor, chunk, batch_size=1, **gen)
                loop_s += time.perf_counter() - t
            else:
                batched += generate_responses(model, processor, chunk, batch_size=args.batch_size, **gen)
                batch_s += time.perf_counter() - t
    same = sum(a == b for a, b in zip(per_sample, batched))
    n = len(items)
    print(f"model {model_path} ({count_parameters(model):,} parameters), {n} samples x 5 images, "
          f"{args.max_new_tokens} new tokens, torch threads {torch.get_num_threads()}")
    print(f"per-sample generate loop : {n / loop_s:8.2f} samples/s ({loop_s:.2f} s)")
    print(f"batched (batch {args.batch_size:>2})      : {n / batch_s:8.2f} samples/s ({batch_s:.2f} s)")
    print(f"ratio batched / per-sample: {loop_s / batch_s:.2f}x (target >= 3x at batch 8 on CPU)")
    print(f"identical greedy replies: {same}/{n}")


if __name__ == "__main__":
    main()
