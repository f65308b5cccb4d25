"""Drawing a `labkit.synth.products.Product` as an RGBA sprite: `draw_product`.

Each kind (box, bottle, blister pack, tube, photo cut-out) has its own painter; ``mods``
carries the appearance changes of the `appearance_deformation` defects (colour shift, text
changed or missing, a part missing or added, warp / shear / aspect change, quantity), so a
defective product is drawn from the same description as the clean one.

    from labkit.synth.drawing import draw_product
    from labkit.synth.products import random_product
    sprite = draw_product(random_product(np.random.default_rng(0)), 120)
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from labkit.synth.products import Product, shift_hue


@lru_cache(maxsize=64)
def font(size: int):
    return ImageFont.load_default(size=max(4, int(size)))


@lru_cache(maxsize=1024)
def _unit_length(text: str) -> float:
    """Width of ``text`` per pixel of font size."""
    return max(font(100).getlength(text), 1.0) / 100


def _darker(rgb, f=0.75):
    return tuple(int(c * f) for c in rgb)


def _lighter(rgb, f=0.35):
    return tuple(int(c + (255 - c) * f) for c in rgb)


def _text(draw, box, text, fill, max_size):
    """Text centred in box, shrunk to fit; nothing when the box is too small to read."""
    x0, y0, x1, y1 = box
    size = int(min(max_size, (y1 - y0) * 0.8))
    if size < 5:
        # Too small for glyphs: a text-like dark line keeps "has text" visible at low resolution.
        cy = (y0 + y1) / 2
        draw.line([(x0 + (x1 - x0) * 0.15, cy), (x1 - (x1 - x0) * 0.15, cy)], fill=fill, width=1)
        return
    # Text width grows linearly with the font size: one measurement (cached) fits it.
    size = max(5, min(size, int((x1 - x0) * 0.92 / _unit_length(text))))
    mask, left, top = _text_mask(text, size)
    draw.bitmap((int(round((x0 + x1) / 2 + left)), int(round((y0 + y1) / 2 + top))), mask, fill=fill)


@lru_cache(maxsize=4096)
def _text_mask(text: str, size: int):
    """Rendered glyphs of ``text`` as an L mask plus its offset from the centre (cached: rendering
    glyphs is the slowest part of drawing a product)."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text, anchor="mm")
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=f, anchor="mm")
    return mask, left, top


class _SafeDraw:
    """ImageDraw for tiny sprites: a box whose far corner falls before its near one (a part
    thinner than a pixel) becomes a one-pixel line instead of an error."""

    def __init__(self, draw):
        self._draw = draw

    def __getattr__(self, name):
        return getattr(self._draw, name)

    @staticmethod
    def _fix(box):
        x0, y0, x1, y1 = box
        return [x0, y0, max(x0, x1), max(y0, y1)]

    def rectangle(self, box, **kw):
        self._draw.rectangle(self._fix(box), **kw)

    def ellipse(self, box, **kw):
        self._draw.ellipse(self._fix(box), **kw)

    def rounded_rectangle(self, box, radius=0, **kw):
        self._draw.rounded_rectangle(self._fix(box), radius=radius, **kw)


def _rrect(draw, box, radius, **kw):
    """A rounded rectangle that degrades to a plain one when it is too small to round."""
    x0, y0, x1, y1 = box
    r = min(radius, (x1 - x0) / 2 - 1, (y1 - y0) / 2 - 1)
    if r < 1 or x1 - x0 < 3 or y1 - y0 < 3:
        draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], **kw)
    else:
        draw.rounded_rectangle([x0, y0, x1, y1], radius=r, **kw)


def _logo(draw, shape, cx, cy, r, fill):
    if r < 1:
        return
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "cross":
        t = max(1, r * 0.38)
        draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
        draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


def _sticker(draw, cx, cy, r, fill):
    """A bright star-burst sticker ("NEW!"), the typical invented part."""
    pts = []
    for i in range(16):
        a = np.pi * 2 * i / 16
        rr = r if i % 2 == 0 else r * 0.6
        pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
    draw.polygon(pts, fill=fill, outline=(0, 0, 0))


def _draw_box(d, p: Product, W, H, colours, mods):
    side_w = int(round(W * p.side)) if p.side else 0
    depth = int(round(side_w * 0.6))
    fw = W - side_w
    body, brand, accent = colours
    outline = _darker(body, 0.55)
    if side_w:
        d.polygon([(0, depth), (side_w, 0), (W - 1, 0), (fw, depth)], fill=_lighter(body, 0.5), outline=outline)
        d.polygon([(fw, depth), (W - 1, 0), (W - 1, H - 1 - depth), (fw, H - 1)], fill=_darker(body, 0.8), outline=outline)
    d.rectangle([0, depth, fw - 1, H - 1], fill=body, outline=outline)
    fh = H - depth
    bands = [] if "band" in mods.get("missing", ()) else [(0.12, 0.40, brand)]
    if "extra_band" in mods.get("added", ()):
        bands.append((0.72, 0.86, accent))
    for t0, t1, c in bands:
        d.rectangle([1, depth + fh * t0, fw - 2, depth + fh * t1], fill=c)
    if not mods.get("no_text"):
        name = mods.get("name", p.name)
        if bands and bands[0][2] == brand:
            _text(d, (2, depth + fh * 0.12, fw - 2, depth + fh * 0.40), name, (255, 255, 255), fh * 0.2)
        else:
            _text(d, (2, depth + fh * 0.12, fw - 2, depth + fh * 0.40), name, _darker(brand, 0.6), fh * 0.2)
        _text(d, (fw * 0.3, depth + fh * 0.48, fw - 2, depth + fh * 0.64), mods.get("dosage", p.dosage), (40, 40, 40), fh * 0.12)
    if "logo" not in mods.get("missing", ()):
        r = min(fw, fh) * 0.13
        _logo(d, p.logo, fw * 0.2, depth + fh * 0.56, r, accent)
    if "sticker" in mods.get("added", ()):
        _sticker(d, fw * 0.7, depth + fh * 0.78, min(fw, fh) * 0.18, (255, 215, 0))


def _draw_bottle(d, p: Product, W, H, colours, mods):
    body, brand, accent = colours
    cap_h, neck_h = H * 0.16, H * 0.06
    top = cap_h + neck_h
    if "cap" not in mods.get("missing", ()):
        _rrect(d, [W * 0.2, 0, W * 0.8 - 1, cap_h], max(1, W * 0.05), fill=accent, outline=_darker(accent, 0.6))
        # ridges on the cap
        for i in range(1, 4):
            x = W * 0.2 + (W * 0.6) * i / 4
            d.line([(x, 1), (x, cap_h - 1)], fill=_darker(accent, 0.7))
    d.rectangle([W * 0.28, cap_h, W * 0.72 - 1, top + 1], fill=_darker(body, 0.85))
    _rrect(d, [0, top, W - 1, H - 1], max(1, W * 0.18), fill=body, outline=_darker(body, 0.6))
    if "label" not in mods.get("missing", ()):
        ly0, ly1 = top + (H - top) * 0.22, top + (H - top) * 0.78
        d.rectangle([0, ly0, W - 1, ly1], fill=(250, 250, 250))
        d.rectangle([0, ly0, W - 1, ly0 + (ly1 - ly0) * 0.35], fill=brand)
        if not mods.get("no_text"):
            _text(d, (1, ly0, W - 1, ly0 + (ly1 - ly0) * 0.35), mods.get("name", p.name), (255, 255, 255), W * 0.3)
            _text(d, (1, ly0 + (ly1 - ly0) * 0.45, W - 1, ly1 - (ly1 - ly0) * 0.2), mods.get("dosage", p.dosage), (30, 30, 30), W * 0.22)
        _logo(d, p.logo, W * 0.5, ly1 - (ly1 - ly0) * 0.1, (ly1 - ly0) * 0.08, accent)
    if "extra_band" in mods.get("added", ()):
        d.rectangle([0, H * 0.88, W - 1, H * 0.95], fill=accent)
    if "sticker" in mods.get("added", ()):
        _sticker(d, W * 0.5, top + (H - top) * 0.88, W * 0.3, (255, 215, 0))


def _draw_blister(d, p: Product, W, H, colours, mods):
    body, brand, accent = colours
    d.rectangle([0, 0, W - 1, H - 1], fill=body, outline=_darker(body, 0.6))
    band_h = H * 0.2
    if "band" not in mods.get("missing", ()):
        d.rectangle([1, 1, W - 2, band_h], fill=brand)
        if not mods.get("no_text"):
            _text(d, (2, 1, W - 2, band_h), mods.get("name", p.name), (255, 255, 255), band_h * 0.7)
    if "bubbles" not in mods.get("missing", ()):
        rows, cols = p.rows, p.cols
        cw, ch = W / cols, (H - band_h) / rows
        r = min(cw, ch) * 0.32
        for i in range(rows):
            for j in range(cols):
                cx, cy = cw * (j + 0.5), band_h + ch * (i + 0.5)
                d.ellipse([cx - r, cy - r * 0.8, cx + r, cy + r * 0.8], fill=_lighter(accent, 0.3), outline=_darker(body, 0.5))
                d.ellipse([cx - r * 0.5, cy - r * 0.6, cx - r * 0.1, cy - r * 0.25], fill=(255, 255, 255))
    if "extra_band" in mods.get("added", ()):
        d.rectangle([1, H * 0.88, W - 2, H - 2], fill=accent)
    if "sticker" in mods.get("added", ()):
        _sticker(d, W * 0.7, H * 0.75, W * 0.25, (255, 215, 0))


def _draw_tube(d, p: Product, W, H, colours, mods):
    body, brand, accent = colours
    crimp = H * 0.07
    cap_y = H * 0.84
    d.rectangle([0, 0, W - 1, crimp], fill=_darker(body, 0.85), outline=_darker(body, 0.6))
    for i in range(1, 4):
        y = crimp * i / 4
        d.line([(1, y), (W - 2, y)], fill=_darker(body, 0.6))
    d.polygon([(0, crimp), (W - 1, crimp), (W * 0.78, cap_y), (W * 0.22, cap_y)], fill=body, outline=_darker(body, 0.6))
    if "band" not in mods.get("missing", ()):
        d.polygon([(W * 0.03, H * 0.25), (W * 0.97, H * 0.25), (W * 0.9, H * 0.5), (W * 0.1, H * 0.5)], fill=brand)
        if not mods.get("no_text"):
            _text(d, (W * 0.1, H * 0.27, W * 0.9, H * 0.48), mods.get("name", p.name), (255, 255, 255), W * 0.3)
        _logo(d, p.logo, W * 0.5, H * 0.62, W * 0.12, accent)
    if "cap" not in mods.get("missing", ()):
        d.rectangle([W * 0.27, cap_y, W * 0.73 - 1, H - 1], fill=accent, outline=_darker(accent, 0.6))
    if "extra_band" in mods.get("added", ()):
        d.rectangle([W * 0.12, H * 0.68, W * 0.85, H * 0.76], fill=accent)
    if "sticker" in mods.get("added", ()):
        _sticker(d, W * 0.5, H * 0.62, W * 0.32, (255, 215, 0))


_DRAW = {"box": _draw_box, "bottle": _draw_bottle, "blister": _draw_blister, "tube": _draw_tube}


def _hsv_rotate(rgba: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of an RGBA array (photos: the colour-shift defect)."""
    img = Image.fromarray(rgba[..., :3], "RGB").convert("HSV")
    hsv = np.asarray(img).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(degrees / 360 * 255)) % 256).astype(np.uint8)
    # Grey photos have no hue to rotate: add saturation so the shift shows.
    hsv[..., 1] = np.maximum(hsv[..., 1], 90)
    rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
    return np.dstack([rgb, rgba[..., 3]])


def _draw_photo(p: Product, H, mods) -> Image.Image:
    src = np.asarray(p.pixels)
    W = max(2, int(round(H * src.shape[1] / src.shape[0])))
    img = Image.fromarray(src, "RGBA").resize((W, H), Image.BILINEAR)
    arr = np.asarray(img).copy()
    arr[..., 3] = np.where(arr[..., 3] >= 128, 255, 0)   # hard edges: exact "product region"
    if mods.get("hue"):
        arr = _hsv_rotate(arr, mods["hue"])
    if "chunk" in mods.get("missing", ()):
        arr[: H // 3, W // 2:, 3] = 0
    img = Image.fromarray(arr, "RGBA")
    if mods.get("added"):
        d = ImageDraw.Draw(img)
        if "sticker" in mods["added"]:
            _sticker(d, W * 0.5, H * 0.5, min(W, H) * 0.22, (255, 215, 0))
        if "extra_band" in mods["added"]:
            ys = np.nonzero(arr[..., 3].any(axis=1))[0]
            y = ys[0] + (ys[-1] - ys[0]) * 0.7 if len(ys) else H * 0.7
            band = np.zeros((H, W), bool)
            band[int(y): int(y + H * 0.08)] = True
            band &= arr[..., 3] > 0
            a = np.asarray(img).copy()
            a[band, :3] = (20, 90, 180)
            img = Image.fromarray(a, "RGBA")
    return img


def _bulge(img: Image.Image, amount: float) -> Image.Image:
    """Non-linear warp: each row is widened (amount > 0, a barrel) or narrowed (< 0, a waist)
    about the centre, most at mid-height, not at all at the top and bottom rows."""
    a = np.asarray(img)
    H, W = a.shape[:2]
    f = 1.0 + amount * np.sin(np.pi * (np.arange(H) + 0.5) / H)          # per-row width factor
    Wout = int(np.ceil(W * max(1.0, f.max())))
    xs = np.arange(Wout) - (Wout - 1) / 2
    src = np.rint(xs[None, :] / f[:, None] + (W - 1) / 2).astype(int)     # nearest source column
    valid = (src >= 0) & (src < W)
    out = np.zeros((H, Wout, 4), np.uint8)
    rows = np.broadcast_to(np.arange(H)[:, None], src.shape)
    out[valid] = a[rows[valid], src[valid]]
    return Image.fromarray(out, "RGBA")


def _warp(img: Image.Image, shear: float = 0.0, aspect: float = 1.0, bulge: float = 0.0) -> Image.Image:
    """Shear about the base (the bottom row stays put), change the width, and/or bulge."""
    if bulge:
        img = _bulge(img, bulge)
    W, H = img.size
    if aspect != 1.0:
        img = img.resize((max(2, int(round(W * aspect))), H), Image.NEAREST)
        W = img.size[0]
    if shear:
        extra = int(np.ceil(abs(shear) * H))
        # The top moves by shear*H, the base stays: output x = input x + shear*(H - y) (+ room on the left).
        off = extra if shear < 0 else 0
        img = img.transform((W + extra, H), Image.AFFINE, (1, shear, -shear * H - off, 0, 1, 0), resample=Image.NEAREST)
    return img


def draw_product(p: Product, height: int, mods: dict | None = None) -> Image.Image:
    """The product as an RGBA sprite ``height`` pixels tall (hard alpha: 0 or 255).

    ``mods`` (all optional): ``hue`` degrees of colour shift; ``name`` / ``dosage`` replacement
    texts; ``no_text``; ``missing`` / ``added`` part names; ``shear`` (x shift per unit height);
    ``bulge`` (mid-height widening, negative narrows); ``aspect`` (width factor); ``quantity``
    (copies side by side).
    """
    mods = mods or {}
    height = max(8, int(round(height)))
    if p.kind == "photo":
        img = _draw_photo(p, height, mods)
    else:
        hue = mods.get("hue", 0.0)
        colours = (p.body, p.brand, p.accent)
        if hue:
            colours = (shift_hue(p.body, hue) if mods.get("tint_body") else p.body, shift_hue(p.brand, hue), shift_hue(p.accent, hue))
            if mods.get("tint_body"):
                # A white body has no hue: tint it with the shifted brand colour.
                colours = (_lighter(colours[1], 0.55), colours[1], colours[2])
        W = max(4, int(round(height * p.aspect)))
        img = Image.new("RGBA", (W, height), (0, 0, 0, 0))
        _DRAW[p.kind](_SafeDraw(ImageDraw.Draw(img)), p, W, height, colours, mods)
    if mods.get("shear") or mods.get("bulge") or mods.get("aspect", 1.0) != 1.0:
        img = _warp(img, mods.get("shear", 0.0), mods.get("aspect", 1.0), mods.get("bulge", 0.0))
    if mods.get("missing"):
        # Without its bottom part (a tube's cap) the product must still stand on its lowest pixel.
        img = img.crop(img.getchannel("A").getbbox())
    n = int(mods.get("quantity", 1))
    if n > 1:
        # Copies overlap like a row of packs, the front one last, so the row stays on screen.
        W, H = img.size
        step = max(1, int(W * 0.62))
        out = Image.new("RGBA", (W + (n - 1) * step, H), (0, 0, 0, 0))
        for i in reversed(range(n)):
            out.paste(img, (i * step, 0), img)
        img = out
    return img
