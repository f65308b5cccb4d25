"""The InternVL3-1B-hf architecture, built offline from its published configuration with random weights.

    python benchmarks/internvl3_1b_hf.py     # parameters per part and image tokens (no weights allocated)

``internvl3_1b_hf.json`` beside this file holds the published configuration values of
OpenGVLab/InternVL3-1B-hf (InternViT-300M-448px + a Qwen2.5-0.5B-sized language model) and where
each comes from. `full_config` turns them into an `InternVLConfig` with the lab tokenizer's token
ids; `build_full_model` saves a random-initialised model (bf16), the lab's BPE tokenizer (the
embedding table keeps the real 151,674 rows) and a 448 px processor with one tile per image, in a
folder `labkit.models.load` reads. `benchmarks/gpu_smoke.py` trains it on a GPU. Nothing is
downloaded; real checkpoints still load through `labkit.models.load("InternVL3-1B-hf")`.
"""
from __future__ import annotations

import json
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "internvl3_1b_hf.json"


def published_config() -> dict:
    """The InternVL3-1B-hf configuration values written in this project (notes dropped)."""
    raw = json.loads(CONFIG.read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def full_config(image_token_id: int, bos_token_id: int, eos_token_id: int, pad_token_id: int):
    """`InternVLConfig` of the published InternVL3-1B-hf architecture with the lab tokenizer's token ids.

    ``vocab_size`` stays 151,674, so the embedding table and LM head have their real size. The vision
    tower's ``initializer_range`` (1e-10 in the published config, which is only ever loaded with
    trained weights) becomes 0.02 so that random activations have a realistic scale.
    """
    from transformers import InternVLConfig

    cfg = published_config()
    text = {**cfg["text_config"], "bos_token_id": bos_token_id, "eos_token_id": eos_token_id, "pad_token_id": pad_token_id}
    vision = {**cfg["vision_config"], "initializer_range": 0.02}
    side, patch = vision["image_size"][0], vision["patch_size"][0]
    tokens_per_image = int((side // patch) ** 2 * cfg["downsample_ratio"] ** 2)
    if tokens_per_image != cfg["image_seq_length"]:
        raise ValueError(f"{CONFIG.name}: {side} px / patch {patch} x {cfg['downsample_ratio']}^2 gives "
                         f"{tokens_per_image} image tokens, but image_seq_length is {cfg['image_seq_length']}")
    top = {k: v for k, v in cfg.items() if k not in ("text_config", "vision_config", "architectures", "model_type")}
    top["image_token_id"] = image_token_id
    return InternVLConfig(text_config=text, vision_config=vision, **top)


def build_full_model(out: Path, seed: int = 0) -> Path:
    """Random-initialised InternVL3-1B-hf architecture (bf16) + lab tokenizer + 448 px processor, saved to ``out``."""
    import torch
    from transformers import (
        GenerationConfig, GotOcr2ImageProcessor, InternVLForConditionalGeneration, InternVLProcessor,
        InternVLVideoProcessor,
    )

    from labkit.models import IM_END, IM_START, INTERNVL_TOKENS, build_tokenizer, chat_template

    tok = build_tokenizer("internvl", 2048)
    ids = {"bos_token_id": tok.convert_tokens_to_ids(IM_START), "eos_token_id": tok.convert_tokens_to_ids(IM_END),
           "pad_token_id": tok.pad_token_id}
    config = full_config(tok.convert_tokens_to_ids(INTERNVL_TOKENS["context_image_token"]), **ids)
    if len(tok) > config.text_config.vocab_size:
        raise ValueError(f"the lab tokenizer has {len(tok)} tokens, more than the published vocabulary")
    side = config.vision_config.image_size[0]
    torch.manual_seed(seed)
    # Initialise on the GPU when there is one: a billion parameters initialise in seconds there.
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = InternVLForConditionalGeneration(config)
    model = model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                                               pad_token_id=ids["pad_token_id"], do_sample=False, max_new_tokens=128)
    size = {"height": side, "width": side}
    image_processor = GotOcr2ImageProcessor(
        size=size, crop_to_patches=False, max_patches=1, min_patches=1,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_convert_rgb=True,
    )
    processor = InternVLProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=InternVLVideoProcessor(size=size, initial_shift=False),
        image_seq_length=config.image_seq_length, chat_template=chat_template("internvl"),
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"arch": "internvl", "size": "InternVL3-1B-hf (random init)", "seed": seed, "parameters": n_params,
            "image_tokens": config.image_seq_length, "config": CONFIG.name}
    (out / "labkit_model.json").write_text(json.dumps(info, indent=2) + "\n")
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def main() -> int:
    import torch
    from transformers import InternVLForConditionalGeneration

    config = full_config(image_token_id=0, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        model = InternVLForConditionalGeneration(config)
    counts = {"vision tower": 0, "projector": 0, "language model + head": 0}
    for name, p in model.named_parameters():
        part = ("vision tower" if ".vision_tower." in name else "projector" if ".multi_modal_projector." in name
                else "language model + head")
        counts[part] += p.numel()
    print(f"InternVL3-1B-hf from {CONFIG.name}:")
    for part, n in counts.items():
        print(f"  {part:24s} {n:>13,}")
    print(f"  {'total':24s} {sum(counts.values()):>13,}")
    side = config.vision_config.image_size[0]
    print(f"  image tokens per {side} px tile: {config.image_seq_length}; vocabulary {config.text_config.vocab_size:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
