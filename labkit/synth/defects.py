"""The defects of the four screening dimensions and how a candidate image is drawn with them.

Each defect is a JSON-able record ``{"dimension", "kind", "severity", "params"}``: the
dimension is one of the schema's four defect tags, ``kind`` the finer defect (below),
``severity`` in [0, 1] its strength (1 = obvious, 0 = barely visible) and ``params`` every
random choice, drawn once by `make_defect`, so that rendering is a pure function of the
record (the same record always gives the same pixels).

=========================  ===============================================================
appearance_deformation     colour_shift, text_changed (text replaced or gone), part_missing,
                           part_added (sticker, extra band), warp (shear or bulge), aspect,
                           quantity (two or three copies)
physical_shadow            shadow_against_light, shadow_missing, shadow_detached,
                           shadow_doubled
placement_layout           floating, sinking, tilt, wrong_scale
extension_rationality      pills, added_prop, second_product, decoration (on the edges)
=========================  ===============================================================

`render_candidate(bg, scene, product, placement, defects)` draws one candidate: the clean
product on its surface with the scene's shadow when ``defects`` is empty.

    rng = np.random.default_rng(0)
    product, scene = random_product(rng), random_scene(rng)
    bg = render_background(scene, 224)
    img, info = render_candidate(bg, scene, product, {"x": 0.5, "t": 0.7, "scale": 1.0},
                                 [make_defect("floating", 0.8, rng, product)])
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from labkit.data import DEFECT_DIMENSIONS
from labkit.synth.drawing import draw_product
from labkit.synth.products import ADDED_PARTS, REMOVABLE_PARTS, Product, random_name, random_product
from labkit.synth.scenes import Scene, compose, draw_prop, prop_spec

_APPEARANCE, _SHADOW, _PLACEMENT, _EXTENSION = DEFECT_DIMENSIONS  # names owned by labkit.data
# Finer kinds per dimension, with their default relative weights.
DEFECT_KINDS: dict[str, dict[str, float]] = {
    _APPEARANCE: {"colour_shift": 1.0, "text_changed": 0.6, "part_missing": 0.8, "part_added": 0.7,
                  "warp": 0.8, "aspect": 0.7, "quantity": 0.6},
    _SHADOW: {"shadow_against_light": 1.0, "shadow_missing": 0.8, "shadow_detached": 0.7, "shadow_doubled": 0.6},
    _PLACEMENT: {"floating": 1.0, "sinking": 0.6, "tilt": 0.8, "wrong_scale": 0.8},
    _EXTENSION: {"pills": 1.0, "added_prop": 0.8, "second_product": 0.8, "decoration": 0.8},
}
KIND_TO_DIMENSION = {k: dim for dim, kinds in DEFECT_KINDS.items() for k in kinds}
# Height of a product at depth scale 1, as a fraction of the image size, and the widest it may be.
PRODUCT_HEIGHT = 0.34
PRODUCT_MAX_WIDTH = 0.42


def applicable(kind: str, product: Product) -> bool:
    """Some defects need a drawn product (text)."""
    return not (kind == "text_changed" and product.kind == "photo")


# Below this image size a product's name is a few pixels high: a changed name would not change
# the pixels, so "text changed" removes the text instead (labels must stay true to the image).
LEGIBLE_TEXT_SIZE = 160


def make_defect(kind: str, severity: float, rng: np.random.Generator, product: Product,
                size: int | None = None) -> dict:
    """A defect record with all its random choices drawn now (``size``: the image size, if known)."""
    if kind not in KIND_TO_DIMENSION:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {', '.join(KIND_TO_DIMENSION)}")
    s = float(np.clip(severity, 0.0, 1.0))
    sign = 1 if rng.random() < 0.5 else -1
    p: dict = {}
    if kind == "colour_shift":
        p = {"hue": sign * (35 + 145 * s), "tint_body": bool(s > 0.55)}
    elif kind == "text_changed":
        if s >= 0.5 or (size is not None and size < LEGIBLE_TEXT_SIZE):
            p = {"no_text": True}
        else:
            other = product.name
            while other == product.name:
                other = random_name(rng)
            p = {"name": other}
    elif kind == "part_missing":
        parts = REMOVABLE_PARTS[product.kind]
        p = {"part": parts[int(rng.integers(len(parts)))]}
    elif kind == "part_added":
        p = {"part": ADDED_PARTS[0] if s > 0.4 else ADDED_PARTS[1]}
    elif kind == "warp":
        if rng.random() < 0.5:
            p = {"shear": sign * (0.1 + 0.4 * s)}
        else:
            p = {"bulge": (0.25 + 0.4 * s) if sign > 0 else -(0.22 + 0.2 * s)}
    elif kind == "aspect":
        f = 1 + 0.22 + 0.6 * s
        p = {"aspect": f if sign > 0 else 1 / f}
    elif kind == "quantity":
        p = {"quantity": 3 if s > 0.6 else 2}
    elif kind == "shadow_against_light":
        p = {"length": 0.6 + 0.4 * s}
    elif kind == "shadow_missing":
        p = {"contact": bool(s < 0.5)}
    elif kind == "shadow_detached":
        p = {"gap": 0.3 + 0.7 * s}          # fraction of the product width
    elif kind == "shadow_doubled":
        p = {"alpha": 0.55 + 0.45 * s}
    elif kind == "floating":
        p = {"lift": 0.08 + 0.3 * s}        # fraction of the product height
    elif kind == "sinking":
        p = {"sink": 0.14 + 0.32 * s}
    elif kind == "tilt":
        p = {"angle": sign * (14 + 36 * s)}
    elif kind == "wrong_scale":
        big = rng.random() < 0.5
        p = {"scale": (1.55 + 1.0 * s) if big else 1 / (1.6 + 1.4 * s)}
    elif kind == "pills":
        n = int(1 + round(s * 5 + rng.integers(0, 2)))
        p = {"n": n, "size": 0.028 + 0.03 * s, "side": sign,
             "offsets": [[float(rng.uniform(0.1, 1.3)), float(rng.uniform(-0.05, 0.09)), float(rng.uniform(0, 180))] for _ in range(n)],
             "colours": [[int(c) for c in rng.integers(60, 256, size=3)] for _ in range(n)]}
    elif kind == "added_prop":
        p = {"prop": prop_spec(rng, ("flower", "cup", "ball")[int(rng.integers(3))], 0.0, 0.0), "scale": 0.55 + 0.65 * s,
             "side": sign}
    elif kind == "second_product":
        p = {"seed": int(rng.integers(2**31)), "scale": 0.55 + 0.45 * s, "side": sign}
    elif kind == "decoration":
        p = {"style": ("bow", "sparkles", "leaves")[int(rng.integers(3))], "size": 0.12 + 0.2 * s, "n": int(2 + round(4 * s))}
    return {"dimension": KIND_TO_DIMENSION[kind], "kind": kind, "severity": round(s, 3), "params": p}


def product_height(product: Product, scene: Scene, placement: dict, size: int) -> int:
    """Clean on-surface height of the product in pixels (perspective x jitter, width-capped)."""
    h = PRODUCT_HEIGHT * size * scene.depth_scale(placement["t"]) * placement.get("scale", 1.0)
    h = min(h, PRODUCT_MAX_WIDTH * size / max(product.aspect, 1e-3))
    return max(8, int(round(h)))


def _pill(draw: ImageDraw.ImageDraw, cx, cy, length, angle, colour):
    """A two-colour capsule lying on the surface."""
    w = length * 0.45
    a = np.deg2rad(angle)
    ux, uy = np.cos(a) * length / 2, np.sin(a) * length / 2 * 0.5  # flattened by perspective
    for half, col in ((1, tuple(colour)), (-1, (245, 245, 245))):
        ex, ey = cx + half * ux * 0.5, cy + half * uy * 0.5
        draw.ellipse([ex - length / 4 - w / 4, ey - w / 2 * 0.7, ex + length / 4 + w / 4, ey + w / 2 * 0.7], fill=col,
                     outline=(70, 70, 70))


def _decorate(img: Image.Image, box, style: str, size_frac: float, n: int):
    """Decorations stuck on the product's edges (a bow on top, sparkles or leaves on its sides)."""
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    r = max(2.0, size_frac * max(w, h) * 0.5)
    if style == "bow":
        cx, cy = (x0 + x1) / 2, y0
        d.polygon([(cx, cy), (cx - 2 * r, cy - r), (cx - 2 * r, cy + r)], fill=(220, 30, 60), outline=(120, 0, 20))
        d.polygon([(cx, cy), (cx + 2 * r, cy - r), (cx + 2 * r, cy + r)], fill=(220, 30, 60), outline=(120, 0, 20))
        d.ellipse([cx - r * 0.5, cy - r * 0.5, cx + r * 0.5, cy + r * 0.5], fill=(160, 0, 40))
        return
    # Points spread along the left, top and right edges.
    pts = []
    for i in range(n):
        f = (i + 0.5) / n
        per = 2 * h + w
        s = f * per
        if s < h:
            pts.append((x0, y1 - s))
        elif s < h + w:
            pts.append((x0 + (s - h), y0))
        else:
            pts.append((x1, y0 + (s - h - w)))
    for cx, cy in pts:
        if style == "sparkles":
            d.polygon([(cx, cy - r), (cx + r * 0.3, cy - r * 0.3), (cx + r, cy), (cx + r * 0.3, cy + r * 0.3),
                       (cx, cy + r), (cx - r * 0.3, cy + r * 0.3), (cx - r, cy), (cx - r * 0.3, cy - r * 0.3)],
                      fill=(255, 220, 40), outline=(180, 120, 0))
        else:
            d.ellipse([cx - r, cy - r * 0.5, cx + r, cy + r * 0.5], fill=(50, 150, 60), outline=(20, 80, 30))


def render_candidate(bg: np.ndarray, scene: Scene, product: Product, placement: dict, defects: list[dict]):
    """One candidate image (HxWx3 uint8) and info: ``box`` and ``mask`` of the product's pixels,
    ``base`` (the surface row it stands on) and ``extras`` (boxes of invented items)."""
    size = bg.shape[0]
    by = {d["kind"]: d["params"] for d in defects}
    mods: dict = {}
    if "colour_shift" in by:
        mods.update(hue=by["colour_shift"]["hue"], tint_body=by["colour_shift"]["tint_body"])
    if "text_changed" in by:
        mods.update(by["text_changed"])
    if "part_missing" in by:
        mods["missing"] = (by["part_missing"]["part"],)
    if "part_added" in by:
        mods["added"] = (by["part_added"]["part"],)
    if "warp" in by:
        mods.update(by["warp"])
    if "aspect" in by:
        mods["aspect"] = by["aspect"]["aspect"]
    if "quantity" in by:
        mods["quantity"] = by["quantity"]["quantity"]

    x_c = placement["x"] * size
    base = scene.ground_y(placement["t"], size)
    h = product_height(product, scene, placement, size)
    if "wrong_scale" in by:
        h = int(round(min(h * by["wrong_scale"]["scale"], 0.92 * base)))
    sprite = draw_product(product, h, mods)
    if "tilt" in by:
        sprite = sprite.rotate(by["tilt"]["angle"], resample=Image.NEAREST, expand=True)
        sprite = sprite.crop(sprite.getchannel("A").getbbox())
    W, H = sprite.size

    direction, length, alpha = scene.shadow_dir, scene.shadow_len, scene.shadow_alpha
    shadows = [dict(direction=direction, length=length, alpha=alpha)]
    contact, contact_dx = True, 0.0
    if "shadow_against_light" in by:
        shadows = [dict(direction=-direction, length=length * by["shadow_against_light"]["length"] / 0.8, alpha=alpha)]
    if "shadow_missing" in by:
        shadows, contact = [], by["shadow_missing"]["contact"]
    if "shadow_detached" in by:
        gap = by["shadow_detached"]["gap"] * W * direction
        shadows = [dict(direction=direction, length=length, alpha=alpha, dx=gap, dy=-0.08 * H)]
        contact, contact_dx = True, gap
    if "shadow_doubled" in by:
        shadows = shadows + [dict(direction=-direction, length=length * 0.9, alpha=alpha * by["shadow_doubled"]["alpha"])]
    lift = by["floating"]["lift"] * H if "floating" in by else 0.0
    sink = by["sinking"]["sink"] * H if "sinking" in by else 0.0

    # Invented items on the surface go in first, so the product always stays in front of them.
    img = bg
    extras = []   # boxes of invented items (for tests and inspection)
    if "second_product" in by:
        q = by["second_product"]
        other = random_product(np.random.default_rng(q["seed"]))
        spr = draw_product(other, max(8, h * q["scale"]))
        xo = x_c + q["side"] * (W / 2 + spr.size[0] / 2 + size * 0.02)
        img, extra = compose(img, scene, spr, xo, base - size * 0.01)
        extras.append(extra["box"])
    if "added_prop" in by:
        q = by["added_prop"]
        spr = draw_prop(q["prop"], size, q["scale"] * h / (q["prop"]["h"] * size))
        xo = x_c + q["side"] * (W / 2 + spr.size[0] / 2 + size * 0.015)
        img, extra = compose(img, scene, spr, xo, base + size * 0.005)
        extras.append(extra["box"])
    if "pills" in by:
        q = by["pills"]
        pim = Image.fromarray(img)
        d = ImageDraw.Draw(pim)
        length = q["size"] * size * 1.6
        for (fx, fy, ang), col in zip(q["offsets"], q["colours"]):
            side = q["side"] if fx < 1.0 else -q["side"]
            cx = x_c + side * (W / 2 + length * 0.8 + (fx % 1.0) * size * 0.12)
            cy = base + fy * size * 0.5
            _pill(d, cx, cy, length, ang, col)
            extras.append([int(cx - length), int(cy - length), int(cx + length) + 1, int(cy + length) + 1])
        img = np.asarray(pim)
    img, info = compose(img, scene, sprite, x_c, base, lift=lift, sink=sink, shadows=shadows, contact=contact,
                        contact_dx=contact_dx)
    if "decoration" in by:
        q = by["decoration"]
        pim = Image.fromarray(img)
        _decorate(pim, info["box"], q["style"], q["size"], q["n"])
        img = np.asarray(pim)
    info["extras"] = extras
    return img, info


def render_original(product: Product, size: int) -> np.ndarray:
    """The original packshot: the product alone on white, centred, about 70% of the height."""
    h = int(round(size * 0.7))
    h = min(h, int(size * 0.85 / max(product.aspect, 1e-3)))
    sprite = draw_product(product, h)
    img = Image.new("RGB", (size, size), (255, 255, 255))
    img.paste(sprite, ((size - sprite.size[0]) // 2, (size - sprite.size[1]) // 2), sprite)
    return np.asarray(img)
