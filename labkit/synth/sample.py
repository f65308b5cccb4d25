"""One screening sample from a seed: plan (focus dimension, acceptable count), draw, label, encode.

`render_sample(index, split, config)` is a pure function of its arguments: the sample's
random generator is seeded with ``(config.seed, split, index)``, so any sample can be
redrawn alone, in any process, with identical bytes. `build_spec` gives the same sample's
ground truth without pixels, and `render_spec` its images plus per-candidate geometry
(product box and mask), which the tests use to check pixels.

    from labkit.synth import SynthConfig, render_sample
    sample = render_sample(3, "test", SynthConfig(size=112, seed=0))   # id "test-000003"
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

from labkit.data import DEFECT_DIMENSIONS
from labkit.metrics import LETTERS, NONE_ANSWER
from labkit.synth.defects import DEFECT_KINDS, applicable, make_defect, render_candidate, render_original
from labkit.synth.products import KINDS, Product, product_from_photo, random_product
from labkit.synth.scenes import Scene, random_scene, render_background
from labkit.synth.text import caption as make_caption
from labkit.synth.text import chain_of_thought, short_chain_of_thought

SPLIT_CODES = {"train": 1, "test": 2, "pseudo_label": 3, "exploration": 4}
ID_PREFIX = {"train": "train", "test": "test", "pseudo_label": "pseudo", "exploration": "explore"}
GENERATOR_VERSION = 1


@dataclass
class SynthConfig:
    """Options of the procedural generator (all have paper-like defaults)."""

    seed: int = 0
    """Base seed; a sample's generator is seeded with (seed, split, index)."""
    size: int = 224
    """Side of every image in pixels (square)."""
    dimension_mix: dict = field(default_factory=lambda: dict(zip(
        (*DEFECT_DIMENSIONS, "normal"), (0.36, 0.20, 0.20, 0.18, 0.06))))  # appearance, shadow, placement, extension
    """Share of samples per focus dimension; "normal" samples have four acceptable candidates.
    Appearance deformation is the most common, as in the paper."""
    acceptable_counts: tuple = (0.22, 0.36, 0.27, 0.15)
    """Distribution of the number of acceptable candidates (0, 1, 2, 3) in non-normal samples.
    With the default mix the mean answer length ("N" counts 1) is about 1.72 (paper: 1.7136)."""
    severity: tuple = (0.15, 1.0)
    """Range of defect strength, drawn uniformly: 1 = obvious, 0 = barely visible."""
    secondary_rate: float = 0.15
    """Chance that a defective candidate also gets a defect of another dimension."""
    kind_weights: dict = field(default_factory=dict)
    """Overrides of the relative weight of finer defect kinds, e.g. {"floating": 2.0, "tilt": 0}."""
    product_kinds: tuple = KINDS
    """Drawn product kinds to use (box, bottle, blister, tube)."""
    originals: tuple = ()
    """Photos of real products on a plain background to use as originals instead of drawn ones."""
    png_compress_level: int = 1
    """PNG compression (0-9): low is fast and the files stay lossless."""
    cot_style: str = "full"
    """Oracle CoT: "full" (sentences naming what is wrong with each image and why) or "short"
    (one verdict per image, e.g. "B: floating (placement)."), for small models and short budgets."""
    pseudo_label_accuracy: float = 1.0
    """Share of pseudo_label samples whose answer, caption and CoT are right. Below 1 the split
    imitates a weak automatic annotator (the paper's stage 1.1 data): the other samples get one
    candidate's verdict flipped (a missed or an invented defect), and every pseudo_label sample
    then has dimension and candidate_defects None with the truth in meta["truth"]."""

    def __post_init__(self):
        mix = dict(self.dimension_mix)
        bad = [k for k in mix if k not in ("normal", *DEFECT_KINDS)]
        if bad:
            raise ValueError(f"dimension_mix has unknown dimension(s) {bad}; expected normal or {', '.join(DEFECT_KINDS)}")
        if sum(mix.values()) <= 0 or min(mix.values()) < 0:
            raise ValueError("dimension_mix weights must be non-negative and not all zero")
        if len(self.acceptable_counts) != 4 or min(self.acceptable_counts) < 0 or sum(self.acceptable_counts) <= 0:
            raise ValueError("acceptable_counts must be 4 non-negative weights for 0, 1, 2, 3 acceptable candidates")
        lo, hi = self.severity
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"severity must be a range within [0, 1], got {self.severity}")
        if self.size < 48:
            # Below 48 px the subtlest defects (a pinched warp, a missing logo) can vanish entirely.
            raise ValueError(f"size must be at least 48 pixels, got {self.size}")
        unknown = [k for k in self.kind_weights if not any(k in kinds for kinds in DEFECT_KINDS.values())]
        if unknown:
            raise ValueError(f"kind_weights has unknown defect kind(s) {unknown}")
        if self.cot_style not in ("full", "short"):
            raise ValueError(f"cot_style must be 'full' or 'short', got {self.cot_style!r}")
        if not 0.0 <= self.pseudo_label_accuracy <= 1.0:
            raise ValueError(f"pseudo_label_accuracy must be in [0, 1], got {self.pseudo_label_accuracy}")
        bad = [k for k in self.product_kinds if k not in KINDS]
        if bad or not self.product_kinds:
            raise ValueError(f"product_kinds must be a non-empty subset of {KINDS}, got {self.product_kinds}")

    def mean_answer_length(self) -> float:
        """The expected mean answer length under this mix (N counts as one letter)."""
        mix = {k: v / sum(self.dimension_mix.values()) for k, v in self.dimension_mix.items()}
        pk = np.asarray(self.acceptable_counts, float) / sum(self.acceptable_counts)
        non_normal = float(np.dot(pk, [1, 1, 2, 3]))
        return mix.get("normal", 0.0) * 4 + (1 - mix.get("normal", 0.0)) * non_normal

    def to_meta(self) -> dict:
        d = asdict(self)
        d["originals"] = [str(p) for p in self.originals]
        return d


def _largest_remainder(weights: dict, n: int) -> dict:
    """Integer counts summing to n, proportional to weights (stratified, not sampled)."""
    total = sum(weights.values())
    raw = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:rest]:
        counts[k] += 1
    return counts


def split_plan(split: str, n: int, config: SynthConfig) -> list[tuple[str, int]]:
    """Per sample (focus dimension, number of acceptable candidates), stratified so that even a
    small split follows the configured mix closely; the order is shuffled by the seed."""
    rng = np.random.default_rng([config.seed, SPLIT_CODES[split], 1_000_003])
    dims = _largest_remainder(dict(config.dimension_mix), n)
    focus = [d for d, c in sorted(dims.items()) for _ in range(c)]
    m = n - dims.get("normal", 0)
    ks = _largest_remainder({k: w for k, w in enumerate(config.acceptable_counts)}, m)
    k_list = [k for k, c in sorted(ks.items()) for _ in range(c)]
    rng.shuffle(focus)
    rng.shuffle(k_list)
    it = iter(k_list)
    return [(d, 4 if d == "normal" else next(it)) for d in focus]


@lru_cache(maxsize=256)
def _photo_product(path: str) -> Product:
    return product_from_photo(path)


@dataclass
class SampleSpec:
    """A sample's ground truth before drawing."""

    index: int
    split: str
    product: Product
    scene: Scene
    placements: list
    defects: list               # per candidate: list of defect records
    focus: str                  # focus dimension or "normal"

    @property
    def candidate_defects(self) -> list[list[str]]:
        """Per candidate the dimension tags (unique, in the order the defects were drawn)."""
        out = []
        for defects in self.defects:
            tags: list[str] = []
            for d in defects:
                if d["dimension"] not in tags:
                    tags.append(d["dimension"])
            out.append(tags)
        return out

    @property
    def answer(self) -> str:
        return "".join(l for l, d in zip(LETTERS, self.defects) if not d) or NONE_ANSWER


def _weighted_kind(rng, dimension: str, config: SynthConfig, product: Product, exclude=()) -> str:
    kinds = {k: config.kind_weights.get(k, w) for k, w in DEFECT_KINDS[dimension].items()
             if applicable(k, product) and k not in exclude}
    kinds = {k: w for k, w in kinds.items() if w > 0}
    if not kinds:
        raise ValueError(f"no defect kind of {dimension} has a positive weight (kind_weights={config.kind_weights})")
    names = sorted(kinds)
    p = np.asarray([kinds[k] for k in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def build_spec(index: int, split: str, config: SynthConfig, focus: str | None = None,
               n_acceptable: int | None = None) -> tuple[SampleSpec, np.random.Generator]:
    """Draw a sample's ground truth; ``focus``/``n_acceptable`` come from `split_plan` or are drawn."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_CODES)}")
    rng = np.random.default_rng([config.seed, SPLIT_CODES[split], index])
    if focus is None:
        names = sorted(config.dimension_mix)
        p = np.asarray([config.dimension_mix[k] for k in names], float)
        focus = names[int(rng.choice(len(names), p=p / p.sum()))]
    if n_acceptable is None:
        p = np.asarray(config.acceptable_counts, float)
        n_acceptable = 4 if focus == "normal" else int(rng.choice(4, p=p / p.sum()))
    if focus == "normal" and n_acceptable != 4:
        raise ValueError("a normal sample has four acceptable candidates")
    if config.originals:
        product = _photo_product(str(config.originals[int(rng.integers(len(config.originals)))]))
    else:
        kinds = config.product_kinds
        product = random_product(rng, kinds[int(rng.integers(len(kinds)))])
    scene = random_scene(rng)
    acceptable = set(rng.permutation(4)[:n_acceptable].tolist())
    others = [d for d in DEFECT_KINDS if d != focus]
    lo, hi = config.severity
    placements, defects = [], []
    for c in range(4):
        placements.append({"x": round(float(0.5 + rng.uniform(-0.08, 0.08)), 4),
                           "t": round(float(rng.uniform(0.5, 0.85)), 4),
                           "scale": round(float(rng.uniform(0.94, 1.06)), 4)})
        if c in acceptable:
            defects.append([])
            continue
        kind = _weighted_kind(rng, focus, config, product)
        records = [make_defect(kind, rng.uniform(lo, hi), rng, product, config.size)]
        if rng.random() < config.secondary_rate:
            dim2 = others[int(rng.integers(len(others)))]
            kind2 = _weighted_kind(rng, dim2, config, product)
            records.append(make_defect(kind2, rng.uniform(lo, hi), rng, product, config.size))
        defects.append(records)
    return SampleSpec(index, split, product, scene, placements, defects, focus), rng


def render_spec(spec: SampleSpec, size: int):
    """The images of a spec: (original array, [candidate arrays], [candidate infos])."""
    bg = render_background(spec.scene, size)
    original = render_original(spec.product, size)
    cands, infos = [], []
    for placement, defects in zip(spec.placements, spec.defects):
        img, info = render_candidate(bg, spec.scene, spec.product, placement, defects)
        cands.append(img)
        infos.append(info)
    return original, cands, infos


def encode_png(arr: np.ndarray, level: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def sample_id(split: str, index: int) -> str:
    return f"{ID_PREFIX[split]}-{index:06d}"


def render_sample(index: int, split: str, config: SynthConfig, focus: str | None = None,
                  n_acceptable: int | None = None, timings: dict | None = None) -> dict:
    """One sample in the lab's schema (images as PNG bytes).

    Labelled splits (train, test, pseudo_label) carry answer, dimension, candidate_defects
    (the four dimension tags), caption and oracle cot; ``exploration`` keeps them in
    ``meta["truth"]`` only. ``meta`` always holds the product identity, the scene, and per
    candidate the placement, the finer defect kinds with severities and the product box.
    ``timings`` (optional dict) accumulates the CPU seconds of this process spent drawing and
    encoding (CPU time: what a core spends, even on a busy machine).
    """
    import time

    t0 = time.process_time()
    spec, rng = build_spec(index, split, config, focus, n_acceptable)
    original, cands, infos = render_spec(spec, config.size)
    t1 = time.process_time()
    level = config.png_compress_level
    images = [{"bytes": encode_png(a, level), "path": None} for a in [original, *cands]]
    t2 = time.process_time()
    if timings is not None:
        timings["draw"] = timings.get("draw", 0.0) + (t1 - t0)
        timings["encode"] = timings.get("encode", 0.0) + (t2 - t1)
    answer, tags = spec.answer, spec.candidate_defects
    dimension = spec.focus
    meta = {
        "generator": "labkit.synth",
        "version": GENERATOR_VERSION,
        "seed": config.seed,
        "index": index,
        "size": config.size,
        "product": spec.product.identity(),
        "scene": spec.scene.to_meta(),
        "candidates": [
            {"placement": pl, "defects": d, "kinds": [r["kind"] for r in d], "box": info["box"], "extras": info["extras"]}
            for pl, d, info in zip(spec.placements, spec.defects, infos)
        ],
    }
    labelled = split != "exploration"
    weak = split == "pseudo_label" and config.pseudo_label_accuracy < 1.0
    if not labelled or weak:
        meta["truth"] = {"answer": answer, "dimension": dimension, "candidate_defects": tags}
    claimed = spec.defects
    if weak:
        claimed = _weak_annotation(spec, config)
        meta["annotation"] = "weak-correct" if claimed is spec.defects else "weak-wrong"
    said = "".join(l for l, d in zip(LETTERS, claimed) if not d) or NONE_ANSWER
    return {
        "id": sample_id(split, index),
        "original": images[0],
        "candidates": images[1:],
        "answer": said if labelled else None,
        "dimension": dimension if labelled and not weak else None,
        "candidate_defects": tags if labelled and not weak else None,
        "caption": make_caption(spec.product, spec.scene, claimed) if labelled else "",
        "cot": chain_of_thought(spec.product, spec.scene, claimed, said, rng, config.cot_style) if labelled else "",
        "split": split,
        "source": "synthetic",
        "meta": json.dumps(meta, sort_keys=True),
    }


def _weak_annotation(spec: SampleSpec, config: SynthConfig) -> list:
    """What a weak annotator claims: the truth, or (with probability 1 - accuracy) the truth
    with one candidate's verdict flipped: a defect missed, or one invented for a good image."""
    rng = np.random.default_rng([config.seed, SPLIT_CODES[spec.split], spec.index, 17])
    if rng.random() < config.pseudo_label_accuracy:
        return spec.defects
    claimed = [list(d) for d in spec.defects]
    c = int(rng.integers(4))
    if claimed[c]:
        claimed[c] = []
    else:
        dim = sorted(DEFECT_KINDS)[int(rng.integers(len(DEFECT_KINDS)))]
        claimed[c] = [make_defect(_weighted_kind(rng, dim, config, spec.product), 0.5, rng, spec.product, config.size)]
    return claimed


def text_corpus(n: int = 200, seed: int = 0, size: int = 224) -> list[str]:
    """Captions and oracle CoTs (full and short) of ``n`` train samples, without drawing any
    image: text for training a tokenizer that covers the generator's vocabulary (fast: no
    pixels). The texts equal those of `render_sample` for the same seed and size."""

    cfg = SynthConfig(seed=seed, size=size)
    texts = []
    for index in range(n):
        spec, rng = build_spec(index, "train", cfg)
        texts.append(make_caption(spec.product, spec.scene, spec.defects))
        texts.append(chain_of_thought(spec.product, spec.scene, spec.defects, spec.answer, rng))
        texts.append(short_chain_of_thought(spec.defects, spec.answer))
    return texts
