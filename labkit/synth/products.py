"""Procedural medicine products (boxes, bottles, blister packs, tubes) and photo cut-outs.

A `Product` is a small JSON-able description (kind, proportions, colours, texts, logo);
`labkit.synth.drawing.draw_product(product, height, mods)` renders it as an RGBA sprite whose
bottom row is the product's base. ``mods`` carries the appearance changes that the `appearance_deformation`
defects ask for (colour shift, text changed or missing, a part missing or added, warp /
shear / aspect change, quantity), so a defective product is drawn from the same
description as the clean one and differs only where the defect says.

Real product photos (``kind="photo"``) are RGBA cut-outs made by the threshold segmenter
(`labkit.segment.threshold_segment`); they take the generic changes (colour, warp,
aspect, quantity, a part cut away, a sticker added).

    from labkit.synth.drawing import draw_product
    from labkit.synth.products import random_product
    sprite = draw_product(random_product(np.random.default_rng(0)), 120)
"""
from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

KINDS = ("box", "bottle", "blister", "tube")
KIND_WEIGHTS = (0.45, 0.25, 0.15, 0.15)
LOGOS = ("circle", "cross", "triangle", "diamond")
# Parts that a "part missing" defect may remove, per kind.
REMOVABLE_PARTS = {
    "box": ("band", "logo"),
    "bottle": ("cap", "label"),
    "blister": ("bubbles", "band"),
    "tube": ("cap", "band"),
    "photo": ("chunk",),
}
ADDED_PARTS = ("sticker", "extra_band")

_SYLLABLES_A = ("Cal", "Meda", "Flu", "Zy", "Lor", "Vita", "Pro", "Neo", "Amo", "Dex", "Ibu", "Para", "Cori", "Sana")
_SYLLABLES_B = ("rix", "ten", "lin", "zol", "min", "cet", "dol", "fen", "tal", "vex", "pam", "sin")
_DOSES = (5, 10, 20, 25, 50, 100, 200, 250, 400, 500)
# Saturated brand colours, so that a hue shift is visible.
_BRAND = ((200, 30, 40), (20, 90, 180), (20, 140, 70), (230, 120, 20), (120, 40, 150), (0, 150, 160), (210, 40, 120))
_BODY = ((250, 250, 248), (245, 240, 225), (235, 242, 250), (250, 245, 235))
_BOTTLE_BODY = ((150, 80, 30), (245, 245, 245), (40, 90, 160), (230, 230, 220))


@dataclass
class Product:
    """A product's identity: everything needed to draw it again identically."""

    kind: str
    aspect: float                   # width / height of the front view
    body: tuple                     # main colour
    brand: tuple                    # band / label colour
    accent: tuple                   # logo, cap, stripes
    name: str
    dosage: str
    logo: str
    side: float = 0.0               # box: visible side face, fraction of the width (0 = none)
    rows: int = 2                   # blister: bubble rows / columns
    cols: int = 5
    photo: str | None = None        # photo cut-outs: the source file (pixels live in `pixels`)
    pixels: object = field(default=None, repr=False, compare=False)  # RGBA array of a photo

    def identity(self) -> dict:
        """JSON-able description for ``meta`` (no pixel data)."""
        d = asdict(self)
        d.pop("pixels", None)
        return d

    def describe(self) -> str:
        """A short phrase naming the product for captions."""
        colour = colour_name(self.brand)
        if self.kind == "photo":
            return f"the product from the photo {self.photo}"
        what = {"box": "box", "bottle": "bottle", "blister": "blister pack", "tube": "tube"}[self.kind]
        return f"a {what} of {self.name} {self.dosage} with a {colour} {'label' if self.kind == 'bottle' else 'band'}"


def colour_name(rgb) -> str:
    """A plain colour word for a brand colour (used in captions)."""
    r, g, b = [c / 255 for c in rgb]
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if s < 0.2:
        return "white" if v > 0.8 else ("grey" if v > 0.35 else "black")
    deg = h * 360
    for limit, name in ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (200, "teal"),
                        (255, "blue"), (290, "purple"), (335, "pink"), (361, "red")):
        if deg < limit:
            return name
    return "red"


def shift_hue(rgb, degrees: float) -> tuple:
    r, g, b = [c / 255 for c in rgb]
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    r, g, b = colorsys.hsv_to_rgb((h + degrees / 360) % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def random_name(rng) -> str:
    return _pick(rng, _SYLLABLES_A) + _pick(rng, _SYLLABLES_B)


def random_product(rng: np.random.Generator, kind: str | None = None) -> Product:
    """A random medicine product; the same generator state gives the same product."""
    kind = kind or KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    brand = _pick(rng, _BRAND)
    accent = _pick(rng, [c for c in _BRAND if c != brand])
    name = random_name(rng)
    dosage = f"{_pick(rng, _DOSES)} mg"
    logo = _pick(rng, LOGOS)
    if kind == "box":
        return Product(kind, float(rng.uniform(0.55, 1.25)), _pick(rng, _BODY), brand, accent, name, dosage, logo,
                       side=float(rng.choice([0.0, rng.uniform(0.12, 0.22)])))
    if kind == "bottle":
        return Product(kind, float(rng.uniform(0.42, 0.58)), _pick(rng, _BOTTLE_BODY), brand, accent, name, dosage, logo)
    if kind == "blister":
        return Product(kind, float(rng.uniform(0.62, 0.8)), (200, 203, 210), brand, accent, name, dosage, logo,
                       rows=int(rng.integers(3, 6)), cols=2)
    if kind == "tube":
        return Product(kind, float(rng.uniform(0.3, 0.4)), _pick(rng, _BODY), brand, accent, name, dosage, logo)
    raise ValueError(f"unknown product kind {kind!r}; expected one of {', '.join(KINDS)}")


def product_from_photo(path, segmenter=None) -> Product:
    """A `Product` from a photo of a product on a plain background.

    ``segmenter(image) -> Segmentation`` (with ``.crop``, the RGBA cut-out) is
    `labkit.segment.threshold_segment` (threshold + largest connected component) by default.
    Raises ValueError naming the file when no product can be cut out.
    """
    from pathlib import Path

    if segmenter is None:
        from labkit.segment import threshold_segment as segmenter
    try:
        result = segmenter(str(path))
    except ValueError as exc:
        raise ValueError(f"{path}: cannot cut a product out of this photo ({exc})") from exc
    crop = result.crop if result.crop.mode == "RGBA" else result.crop.convert("RGBA")
    # Keep photos small in memory; sprites are drawn at most ~0.8 of the image size.
    if max(crop.size) > 512:
        f = 512 / max(crop.size)
        crop = crop.resize((max(2, int(crop.size[0] * f)), max(2, int(crop.size[1] * f))), Image.BILINEAR)
    pixels = np.asarray(crop).copy()
    inside = pixels[..., 3] >= 128
    if inside.sum() < 16:
        raise ValueError(f"{path}: the segmenter found no product ({int(inside.sum())} pixels)")
    mean = tuple(int(c) for c in pixels[..., :3][inside].mean(axis=0))
    return Product("photo", float(pixels.shape[1] / pixels.shape[0]), mean, mean, mean, Path(path).stem, "", "none",
                   photo=Path(path).name, pixels=pixels)
