"""Steps 2-4 of the generation pipeline (`labkit.generate`): layout, placeholder, initial image.

`draw_layout` draws where the product goes (``top_bottom``: the lower band; ``left_right``:
the left or right band); `make_placeholder` scales the segmented product into that region of
a white canvas; `square_reference` crops a background to a square; `make_initial` puts the
reference (left) beside the placeholder (right) and makes the inpainting mask (black left
half, white right half except the product), so only the scene around the product is redrawn.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from labkit.segment import Segmentation, SegmentationError, to_rgb

LAYOUTS = ("top_bottom", "left_right")


class GenerationError(ValueError):
    """Bad input to the generation pipeline; the message names the problem."""


@dataclass
class Layout:
    """Where the product goes on the placeholder canvas (pixel boxes are left, top, right, bottom)."""

    name: str
    side: str  # bottom (top_bottom), left or right (left_right)
    region: tuple[int, int, int, int]
    product_box: tuple[int, int, int, int] = (0, 0, 0, 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def draw_layout(rng: random.Random, size: int, layouts: list[str] | tuple[str, ...] = LAYOUTS) -> Layout:
    """Draw a layout with ``rng``: the preset region of a ``size``×``size`` canvas for the product.

    top_bottom: the canvas splits into a top band (scene) and a bottom band (product):
    region = full width (minus margins), lower 60%. left_right: it splits into a left and a
    right band; the product takes one of them (drawn), the other is scene.
    """
    name = rng.choice(list(layouts))
    m = round(size * 0.05)  # margin so the product never touches the border
    if name == "top_bottom":
        side = "bottom"
        region = (m, round(size * 0.40), size - m, size - m)
    elif name == "left_right":
        side = rng.choice(["left", "right"])
        region = (m, round(size * 0.25), size // 2, size - m) if side == "left" else (size // 2, round(size * 0.25), size - m, size - m)
    else:
        raise GenerationError(f"unknown layout {name!r}; expected one of {', '.join(LAYOUTS)}")
    return Layout(name=name, side=side, region=region)


def make_placeholder(seg: Segmentation, layout: Layout, size: int, product_scale: float = 0.85) -> tuple[Image.Image, np.ndarray, Layout]:
    """Scale the product crop into the layout's region of a white canvas.

    Returns (placeholder RGB image, product mask bool H×W, layout with ``product_box``).
    The product sits centred horizontally and on the bottom of its region (it stands on
    something). Its pixels are the crop resized (LANCZOS), pasted with a hard alpha so the
    placeholder's product pixels are exactly the resized crop's.
    """
    x0, y0, x1, y1 = layout.region
    rw, rh = x1 - x0, y1 - y0
    cw, ch = seg.crop.size
    scale = min(rw / cw, rh / ch) * product_scale
    w, h = max(1, round(cw * scale)), max(1, round(ch * scale))
    product = seg.crop.resize((w, h), Image.LANCZOS)
    left = x0 + (rw - w) // 2
    top = y1 - h - (rh - h) // 10  # near the bottom, with a little room below
    alpha = np.asarray(product.getchannel("A")) >= 128
    if not alpha.any():
        raise SegmentationError(f"the product vanishes when scaled to {w}x{h} px; use a larger size")
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    rgb = np.asarray(product.convert("RGB"))
    region = canvas[top:top + h, left:left + w]
    region[alpha] = rgb[alpha]
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + h, left:left + w] = alpha
    placed = dataclasses.replace(layout, product_box=(left, top, left + w, top + h))
    return Image.fromarray(canvas, "RGB"), mask, placed


def square_reference(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop a background to a square and resize it to ``size``."""
    img = to_rgb(image)
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return img.crop(box).resize((size, size), Image.LANCZOS)


def make_initial(reference: Image.Image, placeholder: Image.Image, product_mask: np.ndarray) -> tuple[Image.Image, Image.Image]:
    """The paper's initial image and mask, side by side.

    initial = reference | placeholder. mask ("L"): left half 0 (kept), right half 255
    (redrawn) except the product (0, kept).
    """
    size = placeholder.size[1]
    if placeholder.size != (size, size) or reference.size != (size, size) or product_mask.shape != (size, size):
        raise GenerationError(f"reference {reference.size}, placeholder {placeholder.size} and product mask {product_mask.shape[::-1]} must all be {size}x{size}")
    initial = Image.new("RGB", (2 * size, size))
    initial.paste(reference.convert("RGB"), (0, 0))
    initial.paste(placeholder, (size, 0))
    mask = np.zeros((size, 2 * size), dtype=np.uint8)
    mask[:, size:] = np.where(product_mask, 0, 255)
    return initial, Image.fromarray(mask, "L")
