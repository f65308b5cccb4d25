"""Sizing the CPU demo model: train-step and generation time of built screeners at a few sizes.

For each candidate size and image size, builds a random InternVL (or Qwen2.5-VL) screener
with `labkit.models.build_model` and measures, on 5-image screening samples with the lab's
CoT prompt:

- one SFT step (forward + backward + AdamW) at batch 4 with an ~80-token target;
- batched greedy generation of 64 new tokens at batch 8.

Run: ``OMP_NUM_THREADS=1 python benchmarks/model_sizing.py [--arch internvl] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

CANDIDATES = {
    "tiny": dict(),
    "s128x4": dict(vocab_size=2048, text_hidden=128, text_layers=4, text_heads=4, text_kv_heads=2,
                   text_intermediate=384, vision_hidden=64, vision_layers=2, vision_heads=4, vision_intermediate=192),
    "s192x4": dict(vocab_size=2048, text_hidden=192, text_layers=4, text_heads=6, text_kv_heads=2,
                   text_intermediate=512, vision_hidden=96, vision_layers=2, vision_heads=4, vision_intermediate=256),
    "s256x6": dict(vocab_size=2048, text_hidden=256, text_layers=6, text_heads=8, text_kv_heads=2,
                   text_intermediate=768, vision_hidden=128, vision_layers=3, vision_heads=4, vision_intermediate=384),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="internvl", choices=("internvl", "qwen2_5_vl"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(CANDIDATES))
    ap.add_argument("--image-sizes", default="56,112")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from labkit.conversions import user_message
    from labkit.infer import generate_responses
    from labkit.models import SIZES, build_model, count_parameters, load
    from labkit.prompts import screening_prompt

    torch.set_num_threads(args.threads)
    rng = torch.Generator().manual_seed(0)

    def noise_image(side=64):
        arr = (torch.rand(side, side, 3, generator=rng) * 255).to(torch.uint8).numpy()
        return Image.fromarray(arr)

    prompt = screening_prompt("cot", "separate", "train")
    target = "<think>" + " ".join(["A: the product is unchanged and its shadow agrees with the light."] * 4) + "</think><answer>AC</answer>"
    print(f"{'size':<8}{'img':>5}{'tok/img':>8}{'params':>11}{'seq':>6}{'train s/step(b4)':>18}{'gen s/batch8x64':>17}")
    for name in args.sizes.split(","):
        for img in [int(x) for x in args.image_sizes.split(",")]:
            dims = replace(SIZES["tiny"], **CANDIDATES[name], image_size=img)
            with tempfile.TemporaryDirectory() as tmp:
                path = build_model(args.arch, dims, tmp, seed=0)
                model, processor = load(path)
            images = [[noise_image() for _ in range(5)] for _ in range(8)]
            msgs = [user_message(5, prompt), {"role": "assistant", "content": [{"type": "text", "text": target}]}]
            text = processor.apply_chat_template(msgs, tokenize=False)
            batch = processor(text=[text] * 4, images=images[:4], return_tensors="pt", padding=True)
            batch["labels"] = batch["input_ids"].clone()
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            times = []
            for _ in range(args.repeats + 1):
                t = time.perf_counter()
                loss = model(**batch).loss
                loss.backward()
                opt.step()
                opt.zero_grad()
                times.append(time.perf_counter() - t)
            train = min(times[1:])
            model.eval()
            items = [(im, prompt) for im in images]
            times = []
            for _ in range(2):
                t = time.perf_counter()
                generate_responses(model, processor, items, batch_size=8, max_new_tokens=64, min_new_tokens=64, progress=False)
                times.append(time.perf_counter() - t)
            gen = min(times)
            print(f"{name:<8}{img:>5}{dims.image_tokens:>8}{count_parameters(model):>11,}{batch['input_ids'].shape[1]:>6}"
                  f"{train:>18.3f}{gen:>17.3f}", flush=True)


if __name__ == "__main__":
    main()
