"""Procedural screening data: labelled samples whose defects are drawn on purpose.

No GPU, no download: an original (a medicine box, bottle, blister pack or tube drawn on
white, or a real product photo cut out by the threshold segmenter) and four candidates that
place it in a scene (a table, shelf or floor in perspective, a wall, props, a light that
the scene shows through a window, a brighter side and the props' shadows). An acceptable
candidate is the unchanged product standing on the surface at a plausible size with a
shadow that agrees with the light; the others carry defects of the four dimensions, each
with a severity from obvious (1) to subtle (0). The four candidates of a sample share one
scene (as four generations from one reference background would) and differ in the product's
position, depth and a few percent of scale, so defects stand out against their siblings.
Every label is true to the pixels: a defect always changes the image (tested down to 48 px at
the subtlest severity) and an acceptable candidate shows exactly the clean product.

Labels. ``candidate_defects`` lists, per candidate, the **dimension tags** of its defects
(``appearance_deformation``, ``physical_shadow``, ``placement_layout``,
``extension_rationality``) and never the finer kinds: the metric and the per-dimension
tools of the lab group by these four names. The finer kind of each defect ("floating",
"shadow_missing", "colour_shift", ...), its severity and parameters are in
``meta["candidates"][i]["defects"]`` (and ``["kinds"]``). ``answer`` = the defect-free
letters or "N"; ``dimension`` = the sample's focus dimension (its defective candidates draw
their main defect from it; a few get a second one from another dimension) or ``normal``
(all four acceptable). ``caption`` and ``cot`` (oracle reasoning over A–D ending in the
answer, without tags) are written from the ground truth. ``exploration`` samples keep
answer, dimension and tags in ``meta["truth"]`` only.

API
---
- ``make_dataset(out, *, train=0, test=0, pseudo=0, exploration=0, size=224, seed=0,
  workers=None, originals_dir=None, **options) -> Path`` — write the splits (see
  `SynthConfig` for the options).
- ``render_sample(index, split, config, focus=None, n_acceptable=None) -> dict`` — one
  sample in the schema, identical bytes for identical arguments.
- ``build_spec`` / ``render_spec`` — a sample's ground truth, then its pixels and geometry.
- ``background_gallery(n, size=224, seed=0) -> list[PIL.Image]`` — scenes without product.
- ``text_corpus(n=200, seed=0, size=224) -> list[str]`` — captions and CoTs without images (tokenizers).

Command line: ``labkit synth --out DIR --train 1000 --test 400 --pseudo 2000
--exploration 5000 --size 224 --seed 0`` and ``labkit show DIR --id ID --out sheet.png``.
Speed: ``python benchmarks/synth_speed.py``.
"""
from __future__ import annotations

from labkit.synth.dataset import background_gallery, find_originals, make_dataset
from labkit.synth.defects import DEFECT_KINDS, KIND_TO_DIMENSION, make_defect, render_candidate, render_original
from labkit.synth.drawing import draw_product
from labkit.synth.products import KINDS, Product, product_from_photo, random_product
from labkit.synth.sample import (
    SampleSpec, SynthConfig, build_spec, render_sample, render_spec, sample_id, split_plan, text_corpus,
)
from labkit.synth.scenes import Scene, random_scene, render_background

__all__ = [
    "DEFECT_KINDS", "KIND_TO_DIMENSION", "KINDS", "Product", "SampleSpec", "Scene", "SynthConfig",
    "background_gallery", "build_spec", "draw_product", "find_originals", "make_dataset", "make_defect",
    "product_from_photo", "random_product", "random_scene", "render_background", "render_candidate",
    "render_original", "render_sample", "render_spec", "sample_id", "split_plan", "text_corpus",
]
