"""Screening models: tiny random-initialised InternVL / Qwen2.5-VL built offline, and loading.

``build_model`` makes a randomly initialised model of the *real* transformers architecture
(`InternVLForConditionalGeneration` or `Qwen2_5_VLForConditionalGeneration`) with:

- a ByteLevel BPE tokenizer trained here with `tokenizers` on the lab's prompts, answer
  formats and the vocabulary of synthetic captions / chains of thought; ChatML control tokens
  and the processor's image tokens are special; ``<think>``, ``</think>``, ``<answer>``,
  ``</answer>`` are added *non-special* tokens, so they survive ``skip_special_tokens=True``
  (TRL decodes completions that way before the rewards read them);
- a processor built from its classes with a small fixed image size and no tiling;
- a ChatML chat template whose assistant turns sit inside ``{% generation %}`` markers, so
  ``assistant_only_loss`` works in TRL's SFT.

Everything is saved with ``save_pretrained`` (safetensors) into one folder that plain
transformers reloads offline, with no project code::

    from transformers import AutoModelForImageTextToText, AutoProcessor
    model = AutoModelForImageTextToText.from_pretrained("data/models/small-internvl")
    processor = AutoProcessor.from_pretrained("data/models/small-internvl")

``load(name_or_path)`` loads a local folder or a hub checkpoint (for users with network and a
GPU: ``InternVL3-1B-hf``, ``InternVL3-2B-hf``, ``Qwen2.5-VL-3B-Instruct``).

Run ``labkit build-model --arch internvl --size small --out data/models/small-internvl``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit import prompts
from labkit.metrics import LETTERS

ARCHS = ("internvl", "qwen2_5_vl")

# Short names for the real checkpoints (need network access the first time).
HUB_ALIASES = {
    "InternVL3-1B-hf": "OpenGVLab/InternVL3-1B-hf",
    "InternVL3-2B-hf": "OpenGVLab/InternVL3-2B-hf",
    "Qwen2.5-VL-3B-Instruct": "Qwen/Qwen2.5-VL-3B-Instruct",
}

# ChatML control tokens shared by both families.
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
# Tokens the processors look for.
INTERNVL_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
QWEN_TOKENS = {
    "vision_start": "<|vision_start|>",
    "vision_end": "<|vision_end|>",
    "image_pad": "<|image_pad|>",
    "video_pad": "<|video_pad|>",
}
# Reasoning/answer tags: added tokens, NOT special (they must survive decoding).
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass(frozen=True)
class ModelSize:
    """Dimensions of a built screener (both families read the fields they need)."""

    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary size (incl. special tokens)"})
    text_hidden: int = field(default=64, metadata={"help": "language model hidden size"})
    text_layers: int = field(default=2, metadata={"help": "language model decoder layers"})
    text_heads: int = field(default=4, metadata={"help": "attention heads (head_dim = hidden / heads)"})
    text_kv_heads: int = field(default=2, metadata={"help": "key/value heads (grouped-query attention)"})
    text_intermediate: int = field(default=128, metadata={"help": "MLP width of the language model"})
    vision_hidden: int = field(default=32, metadata={"help": "vision tower hidden size"})
    vision_layers: int = field(default=1, metadata={"help": "vision tower layers"})
    vision_heads: int = field(default=2, metadata={"help": "vision tower attention heads"})
    vision_intermediate: int = field(default=64, metadata={"help": "vision tower MLP width"})
    image_size: int = field(default=56, metadata={"help": "square input side in pixels (multiple of 28)"})
    patch_size: int = field(default=14, metadata={"help": "vision patch side in pixels"})
    max_positions: int = field(default=4096, metadata={"help": "maximum sequence length"})
    downsample_ratio: float = field(default=0.5, metadata={
        "help": "InternVL pixel shuffle: 0.5 merges 2x2 patches into one language-model token (InternVL3's "
                "own value), 0.25 merges 4x4; Qwen2.5-VL always merges 2x2"})

    @property
    def image_tokens(self) -> int:
        """Language-model tokens per image: patches merged by the pixel shuffle / spatial merge."""
        return round((self.image_size // self.patch_size) ** 2 * self.downsample_ratio ** 2)


SIZES = {
    # Tests: well under 1M parameters, builds in about a second.
    "tiny": ModelSize(),
    # The CPU demo model (InternVL: ~4.7M parameters). Sized by measurement (docs/training.md):
    # 64 px images cut into 16 px patches (16 patches, 4 language-model tokens after the 2x2
    # merge) through a 4-layer, 128-wide ViT, pre-trained on the synthetic defects (labkit
    # pretrain), reached a per-candidate AUC of 0.91 in 10 CPU-minutes, where 8 px patches (16
    # tokens) cost 3.4x per step and reached 0.68 in the same time. The language model is 256 wide
    # (the projector's output) and 4 layers deep.
    "small": ModelSize(
        vocab_size=2048, text_hidden=256, text_layers=4, text_heads=4, text_kv_heads=2,
        text_intermediate=768, vision_hidden=128, vision_layers=4, vision_heads=4,
        vision_intermediate=384, image_size=64, patch_size=16,
    ),
}


# ----------------------------------------------------------------------------- tokenizer corpus

# Words of the synthetic captions and chains of thought (labkit.synth writes these from the
# ground truth). Covering them makes those texts short in tokens, which makes SFT fast.
_DOMAIN_WORDS = """
original product photo image candidate candidates box bottle blister pack tube cap label brand band logo
name dosage text side face front body scene table shelf floor wall texture surface light lighting shadow
shadows left right top bottom above below behind front under over on in at of the a an and or but with
without is are was has have looks look unchanged changed warped warp sheared shear stretched squashed aspect
colour color shifted shift missing added extra part parts quantity two second copy pills pill props prop
decoration decorations edge edges floating floats sinking sinks into tilted tilt impossible wrong scale
too large small big tiny plausible size angle stands standing resting rests detached doubled double
against direction agrees agree consistent inconsistent natural correct incorrect defect defects defective
acceptable unacceptable fails passes meets requirement requirements so therefore none all every each
candidate A B C D N deformation appearance physical placement layout extension rationality normal
red green blue yellow orange purple pink white black gray grey brown cyan magenta dark light pale bright
mg ml tablets capsules syrup cream drops vitamin relief pain cold allergy 5 10 20 25 50 100 200 250 500
product's scene's light's it its this that these those there here same different only also not no yes
good bad fine ok best most aesthetic one letters order answer reasoning think
"""

_ANSWERS = ["N", "A", "B", "C", "D", "AB", "AC", "AD", "BC", "BD", "CD", "ABC", "ABD", "ACD", "BCD", "ABCD"]


def _corpus() -> list[str]:
    """Training text for the BPE: every prompt variant, answer formats, domain words."""

    texts = []
    for form in prompts.FORMS:
        for layout in prompts.LAYOUTS:
            for variant in prompts.VARIANTS:
                for style in prompts.STYLES:
                    texts.append(prompts.screening_prompt(form, layout, variant, style))
    texts += [prompts.CAPTION_PROMPT, prompts.CAPTION_PROMPT_SHORT, prompts.IMAGE_CAPTION_PROMPT]
    for layout, labels in prompts.IMAGE_LABELS.items():
        texts.append("\n".join(f"{label}: " for label in labels))
    for layout in prompts.LAYOUTS:
        for ans in _ANSWERS:
            texts.append(prompts.answer_driven_prompt(ans, layout))
    # Captions and oracle reasoning of synthetic samples (text only, no pixels drawn). Imported
    # here: labkit.synth is a later pipeline stage than the models, and only this corpus needs it.
    from labkit.synth.sample import text_corpus

    texts += text_corpus(300)
    words = _DOMAIN_WORDS.split()
    texts.append(" ".join(words))
    texts.extend(f"{w.capitalize()} {w}." for w in words)
    for letter in LETTERS:
        texts.append(f"Original: a box. {letter}: the product is unchanged, its shadow agrees with the light.")
        texts.append(f"{letter}: the product is warped, so {letter} fails requirement 1.")
    for ans in _ANSWERS:
        # Answer formats in both forms; the tags themselves are added tokens.
        texts.append(f"<think>A is fine. B is warped.</think><answer>{ans}</answer>")
        texts.append(ans)
    # Repeat so that domain merges win over rare prompt fragments.
    return texts * 3


def build_tokenizer(arch: str, vocab_size: int = 1024):
    """A ByteLevel BPE `PreTrainedTokenizerFast` with ChatML, image and tag tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    image_tokens = INTERNVL_TOKENS if arch == "internvl" else QWEN_TOKENS
    specials = [PAD, IM_START, IM_END] + list(image_tokens.values())
    tok = Tokenizer(models.BPE())
    # Candidate letters A-D are always their own tokens ("AC" -> "A", "C"): the answer is then
    # spelled with the same tokens that name the candidates in prompts and reasoning, which a
    # small model learns faster than one opaque token per letter combination.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[A-D]"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAG_TOKENS),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    kwargs = dict(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        model_max_length=1 << 20,
        padding_side="left",
    )
    if arch == "internvl":
        kwargs["extra_special_tokens"] = dict(INTERNVL_TOKENS)
    fast = PreTrainedTokenizerFast(**kwargs)
    from tokenizers import AddedToken

    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    return fast


def chat_template(arch: str) -> str:
    """ChatML with one image placeholder per image item and {% generation %} around replies."""
    placeholder = "<IMG_CONTEXT>\n" if arch == "internvl" else "<|vision_start|><|image_pad|><|vision_end|>"
    return (
        "{%- macro render(content) -%}"
        "{%- if content is string -%}{{ content }}"
        "{%- else -%}{%- for item in content -%}"
        "{%- if item['type'] == 'image' -%}" + "{{ '" + placeholder.replace("\n", "\\n") + "' }}"
        "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
        "{%- endif -%}{%- endfor -%}{%- endif -%}"
        "{%- endmacro -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'assistant' -%}"
        "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ render(message['content']) }}{{ '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
        "{%- else -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}{{ render(message['content']) }}{{ '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


# ----------------------------------------------------------------------------- builders

def _text_config_kwargs(size: ModelSize, tok) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=size.text_hidden,
        intermediate_size=size.text_intermediate,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_kv_heads,
        max_position_embeddings=size.max_positions,
        bos_token_id=tok.convert_tokens_to_ids(IM_START),
        eos_token_id=tok.convert_tokens_to_ids(IM_END),
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )


def _build_internvl(size: ModelSize, tok):
    from transformers import (
        GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor,
        InternVLVideoProcessor, Qwen2Config,
    )

    text = Qwen2Config(**_text_config_kwargs(size, tok))
    vision = dict(
        hidden_size=size.vision_hidden,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        intermediate_size=size.vision_intermediate,
        image_size=[size.image_size, size.image_size],
        patch_size=[size.patch_size, size.patch_size],
        use_mean_pooling=False,
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids(INTERNVL_TOKENS["context_image_token"]),
        image_seq_length=size.image_tokens,
        downsample_ratio=size.downsample_ratio,
        tie_word_embeddings=True,
    )
    model = InternVLForConditionalGeneration(config)
    side = {"height": size.image_size, "width": size.image_size}
    image_processor = GotOcr2ImageProcessor(
        size=side, crop_to_patches=False, max_patches=1, min_patches=1,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_convert_rgb=True,
    )
    video_processor = InternVLVideoProcessor(size=side, initial_shift=False)
    processor = InternVLProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
        image_seq_length=size.image_tokens, chat_template=chat_template("internvl"),
    )
    return model, processor


def _build_qwen(size: ModelSize, tok):
    from transformers import (
        Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    head_dim = size.text_hidden // size.text_heads
    half = head_dim // 2
    # mrope splits the rotary half-dimension into temporal, height and width sections.
    t = half // 4
    h = (half - t) // 2
    mrope = [t, h, half - t - h]
    text = _text_config_kwargs(size, tok)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope}
    text.pop("tie_word_embeddings")
    vision = dict(
        depth=size.vision_layers,
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_intermediate,
        num_heads=size.vision_heads,
        patch_size=size.patch_size,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=size.patch_size * 2 * 4,
        out_hidden_size=size.text_hidden,
        fullatt_block_indexes=list(range(size.vision_layers)),
    )
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tok.convert_tokens_to_ids(QWEN_TOKENS["image_pad"]),
        video_token_id=tok.convert_tokens_to_ids(QWEN_TOKENS["video_pad"]),
        vision_start_token_id=tok.convert_tokens_to_ids(QWEN_TOKENS["vision_start"]),
        vision_end_token_id=tok.convert_tokens_to_ids(QWEN_TOKENS["vision_end"]),
        tie_word_embeddings=True,
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    pixels = size.image_size * size.image_size
    # min = max pixels: every image becomes image_size x image_size (aspect kept approximately).
    px = {"shortest_edge": pixels, "longest_edge": pixels}
    image_processor = Qwen2VLImageProcessor(size=px, patch_size=size.patch_size, merge_size=2, temporal_patch_size=2)
    video_processor = Qwen2VLVideoProcessor(size=px, patch_size=size.patch_size, merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
        chat_template=chat_template("qwen2_5_vl"),
    )
    return model, processor


def build_model(arch: str, size: str | ModelSize, out, seed: int = 0) -> Path:
    """Build, randomly initialise (seeded) and save a screener; return the folder path.

    ``arch``: internvl | qwen2_5_vl. ``size``: tiny | small (or a `ModelSize`).
    The folder holds model (safetensors), processor, tokenizer, chat template,
    generation config and ``labkit_model.json`` (arch, size, seed, parameter count).
    """
    import torch
    from transformers import GenerationConfig

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
        size_name, dims = size, SIZES[size]
    else:
        size_name, dims = "custom", size
    merge = round(1 / dims.downsample_ratio) if arch == "internvl" else 2
    if dims.image_size % (merge * dims.patch_size):
        raise ValueError(f"image_size {dims.image_size} must be a multiple of {merge} x patch_size ({merge * dims.patch_size})")
    out = Path(out)
    torch.manual_seed(seed)
    tok = build_tokenizer(arch, dims.vocab_size)
    model, processor = (_build_internvl if arch == "internvl" else _build_qwen)(dims, tok)
    model.generation_config = GenerationConfig(
        eos_token_id=tok.convert_tokens_to_ids(IM_END),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.convert_tokens_to_ids(IM_START),
        do_sample=False,
        max_new_tokens=128,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"arch": arch, "size": size_name, "seed": seed, "parameters": n_params,
            "image_tokens": dims.image_tokens, "dims": asdict(dims)}
    (out / "labkit_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


# ----------------------------------------------------------------------------- loading

def default_device_dtype(device=None, dtype=None):
    """CUDA + bfloat16 when a GPU is there, else CPU + float32 (explicit arguments win)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return device, dtype


def resolve_name(name_or_path) -> str:
    """A local folder as is; a short alias (InternVL3-1B-hf, ...) to its hub id; else unchanged."""
    s = str(name_or_path)
    if Path(s).is_dir():
        return s
    return HUB_ALIASES.get(s, s)


def load(name_or_path, device=None, dtype=None, trust_remote_code: bool = False):
    """Load ``(model, processor)`` from a local folder or a hub id / alias, ready to generate.

    The model is in eval mode on ``device`` (CUDA with bf16 when available, else CPU float32);
    the processor pads on the left (batched generation). ``trust_remote_code`` stays off unless
    asked for. Raises FileNotFoundError for a path that does not exist and is not a hub id.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = resolve_name(name_or_path)
    looks_local = os.sep in str(name_or_path) or str(name_or_path).startswith(".") or Path(str(name_or_path)).exists()
    if looks_local and not Path(name).is_dir():
        raise FileNotFoundError(f"model folder {str(name_or_path)!r} does not exist (build one with `labkit build-model`)")
    if Path(name).is_dir() and not (Path(name) / "config.json").exists():
        raise FileNotFoundError(f"{name!r} is not a model folder (no config.json)")
    if not Path(name).is_dir() and "/" not in name:
        # A bare word is neither a folder nor a hub id (those are ORG/NAME): say so in one line.
        raise FileNotFoundError(f"model {name!r} is not a folder, a known alias ({', '.join(sorted(HUB_ALIASES))}) "
                                "or a hub id of the form ORG/NAME")
    device, dtype = default_device_dtype(device, dtype)
    try:
        processor = AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
        model = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code)
    except OSError as exc:  # transformers' "not found" / offline errors are OSErrors with long messages
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileNotFoundError(f"cannot load model {name!r} from the hub or its local cache: {first}") from exc
    model.to(device).eval()
    tok = getattr(processor, "tokenizer", processor)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, processor


def count_parameters(model) -> int:
    """Number of parameters (all, trainable or not)."""
    return sum(p.numel() for p in model.parameters())
