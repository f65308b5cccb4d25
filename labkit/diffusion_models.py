"""Tiny random FLUX.1 Fill + Redux components, built offline, for CPU tests and small mode.

The paper inpaints with FLUX.1-Fill-dev conditioned on FLUX.1-Redux-dev. Those weights are
tens of GB; here we build the *same diffusers/transformers classes* at toy sizes with random
weights, so the real code path (`FluxFillPipeline`, `FluxPriorReduxPipeline`) runs on CPU in
seconds. The images they make are noise-like; the geometry, seeds and I/O are what is tested.

    labkit build-diffusion --out data/models/tiny-flux
    # -> data/models/tiny-flux/fill   (FluxFillPipeline.from_pretrained)
    #    data/models/tiny-flux/redux  (FluxPriorReduxPipeline.from_pretrained)

What keeps the layout of the real models:

* ``AutoencoderKL`` with 16 latent channels and 4 resolution levels (8× downsampling), so
  Fill's mask packing gives 8·8·4 = 256 mask channels;
* ``FluxTransformer2DModel`` with ``in_channels=384`` (64 packed latents + 64 masked-image
  latents + 256 mask), ``out_channels=64`` and guidance embeddings, as FLUX.1-Fill-dev;
* CLIP (BPE, ``</w>`` word suffix, trained here) and T5 (Unigram, trained here) tokenizers
  and tiny encoders;
* Redux: ``ReduxImageEncoder`` on a tiny ``SiglipVisionModel`` with its ``SiglipImageProcessor``.

One deliberate difference: the real Redux repository has no text encoders, and the Redux
pipeline then emits zero text embeddings of the real T5/CLIP widths (4096/768), which would
force a 50M-parameter ``ReduxImageEncoder``. The tiny Redux folder therefore carries copies of
the tiny text encoders, so its embeddings have the tiny widths (`labkit.generate` passes an
empty prompt when a Redux pipeline has text encoders).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# A few product-photo words so the tokenizers have a real (if small) vocabulary.
_CORPUS = [
    "a product photo of a medicine box on a wooden table in soft daylight",
    "a bottle of pills next to a plant, studio lighting, white background",
    "packshot of a cosmetic tube on a marble counter with a soft shadow",
    "a box of tablets on a kitchen shelf, warm light, shallow depth of field",
    "the product stands on the floor of a bright room near a window",
    "a jar and a blister pack on a bathroom sink, clean reflections",
    "high quality commercial photography, realistic shadows, natural colors",
]


@dataclass
class TinyFluxConfig:
    """Sizes of the tiny components (all random weights)."""

    seed: int = field(default=0, metadata={"help": "torch seed for the random weights"})
    hidden: int = field(default=32, metadata={"help": "width of CLIP, T5 and SigLIP encoders"})
    heads: int = field(default=2, metadata={"help": "attention heads of the FLUX transformer"})
    head_dim: int = field(default=16, metadata={"help": "head dim of the FLUX transformer (= sum of rope axes)"})
    num_layers: int = field(default=1, metadata={"help": "double-stream FLUX blocks"})
    num_single_layers: int = field(default=1, metadata={"help": "single-stream FLUX blocks"})
    vae_channels: int = field(default=8, metadata={"help": "channels of every VAE level"})
    siglip_image_size: int = field(default=32, metadata={"help": "SigLIP input size (Redux)"})
    siglip_patch: int = field(default=8, metadata={"help": "SigLIP patch size"})
    clip_vocab: int = field(default=400, metadata={"help": "CLIP BPE vocabulary size"})
    t5_vocab: int = field(default=300, metadata={"help": "T5 Unigram vocabulary size"})


def build_clip_tokenizer(vocab_size: int = 400):
    """A CLIP tokenizer from a byte-level BPE trained here (``</w>`` end-of-word suffix)."""
    from tokenizers import pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    base = CLIPTokenizer()  # empty vocab, but CLIP's normaliser and pre-tokeniser
    backend = base.backend_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    # CLIPTokenizer wants merges as (left, right) tuples.
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return CLIPTokenizer(vocab=model["vocab"], merges=merges, model_max_length=77)


def build_t5_tokenizer(vocab_size: int = 300):
    """A T5 tokenizer from a Unigram model trained here (<pad>=0, </s>=1, <unk>=2 as in T5)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    vocab = [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]
    specials = {"<pad>", "</s>", "<unk>"}
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(p, float(s)) for p, s in vocab if p not in specials]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def build_text_encoders(cfg: TinyFluxConfig):
    """(CLIP tokenizer, CLIPTextModel, T5 tokenizer, T5EncoderModel), tiny and random."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = build_clip_tokenizer(cfg.clip_vocab)
    tokenizer_2 = build_t5_tokenizer(cfg.t5_vocab)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=2 * cfg.hidden,
            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, projection_dim=cfg.hidden,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2), d_model=cfg.hidden, d_kv=8, d_ff=2 * cfg.hidden, num_layers=1,
            num_heads=2, relative_attention_num_buckets=8, decoder_start_token_id=0,
            pad_token_id=0, eos_token_id=1,
        )
    )
    return tokenizer, clip.eval(), tokenizer_2, t5.eval()


def build_tiny_flux(out: str | Path, cfg: TinyFluxConfig | None = None) -> dict[str, Path]:
    """Build and save tiny FLUX Fill and Redux pipelines under ``out/fill`` and ``out/redux``.

    Returns ``{"fill": path, "redux": path}``. Both reload offline with ``from_pretrained``.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxPriorReduxPipeline,
        FluxTransformer2DModel,
    )
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    cfg = cfg or TinyFluxConfig()
    if cfg.head_dim % 8:
        raise ValueError(f"head_dim must be a multiple of 8 (rope axes), got {cfg.head_dim}")
    out = Path(out)
    torch.manual_seed(cfg.seed)
    tokenizer, clip, tokenizer_2, t5 = build_text_encoders(cfg)
    # Rope axes (ids: index, row, col) must sum to the head dim and be even.
    # Same split as FLUX.1 (16, 56, 56) for 128: rows/cols get ~7/16 each, rounded to even.
    side = (cfg.head_dim - cfg.head_dim // 8) // 2 // 2 * 2
    axes = (cfg.head_dim - 2 * side, side, side)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=384, out_channels=64, num_layers=cfg.num_layers,
        num_single_layers=cfg.num_single_layers, attention_head_dim=cfg.head_dim,
        num_attention_heads=cfg.heads, joint_attention_dim=cfg.hidden, pooled_projection_dim=cfg.hidden,
        guidance_embeds=True, axes_dims_rope=axes,
    )
    c = cfg.vae_channels
    vae = AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(c,) * 4, layers_per_block=1, latent_channels=16, norm_num_groups=min(4, c),
        sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        scaling_factor=0.3611, shift_factor=0.1159,  # FLUX VAE's values
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, max_image_seq_len=4096, base_shift=0.5, max_shift=1.15, use_dynamic_shifting=True,
    )
    fill = FluxFillPipeline(
        scheduler=scheduler, vae=vae.eval(), text_encoder=clip, tokenizer=tokenizer,
        text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer.eval(),
    )
    fill.save_pretrained(out / "fill", safe_serialization=True)

    siglip = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=cfg.hidden, intermediate_size=2 * cfg.hidden, num_hidden_layers=1,
            num_attention_heads=2, image_size=cfg.siglip_image_size, patch_size=cfg.siglip_patch,
        )
    )
    processor = SiglipImageProcessor(size={"height": cfg.siglip_image_size, "width": cfg.siglip_image_size})
    redux = FluxPriorReduxPipeline(
        image_encoder=siglip.eval(), feature_extractor=processor,
        image_embedder=ReduxImageEncoder(redux_dim=cfg.hidden, txt_in_features=cfg.hidden).eval(),
        text_encoder=clip, tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=tokenizer_2,
    )
    redux.save_pretrained(out / "redux", safe_serialization=True)
    (out / "README.md").write_text(
        "Tiny random FLUX.1 Fill + Redux components built by `labkit build-diffusion` "
        f"(seed {cfg.seed}). Random weights: for tests and small mode only.\n"
        f"config: {json.dumps(cfg.__dict__, sort_keys=True)}\n"
    )
    return {"fill": out / "fill", "redux": out / "redux"}
