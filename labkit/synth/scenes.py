"""Procedural scenes: a wall, a support surface in perspective, props, and a visible light.

A `Scene` is a JSON-able description: the support (``table``, ``shelf`` or ``floor``), its
back edge (``horizon``) and front edge, wall and surface colours and patterns, the side the
light comes from (the wall is brighter there, a window shows it, and every prop casts its
shadow away from it) and the props. `render_background(scene, size)` draws it without any
product; `compose(...)` places a sprite on the surface with a shadow that obeys (or, for the
defects, breaks) the scene's light.

    from labkit.synth.scenes import random_scene, render_background
    bg = render_background(random_scene(np.random.default_rng(0)), 224)   # HxWx3 uint8
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SURFACES = ("table", "shelf", "floor")
_WALLS = ((232, 226, 214), (214, 226, 232), (236, 232, 222), (222, 232, 220), (238, 222, 216), (205, 210, 218))
_WOOD = ((176, 128, 84), (150, 104, 66), (196, 160, 118), (120, 86, 60))
_STONE = ((200, 200, 196), (170, 172, 176), (224, 218, 206), (150, 150, 146))
PROP_KINDS = ("cup", "vase", "ball", "books", "candle")


@dataclass
class Scene:
    """Everything needed to redraw a background identically (fractions of the image size)."""

    surface: str
    wall: tuple
    wall_pattern: str            # plain | stripes | tiles
    ground: tuple                # support surface colour
    ground_pattern: str          # wood | tiles | plain
    horizon: float               # y of the surface's back edge
    front: float                 # y of the surface's front edge (1.0: runs off the image)
    light: str                   # "left" or "right": where the light comes from
    shadow_len: float            # horizontal shadow reach per unit of object height
    shadow_squash: float         # vertical reach of the shadow per unit of height (perspective)
    shadow_alpha: float          # darkness of cast shadows
    props: list = field(default_factory=list)

    @property
    def shadow_dir(self) -> int:
        """+1 when shadows fall to the right (light from the left), -1 otherwise."""
        return 1 if self.light == "left" else -1

    def to_meta(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        noun = {"books": "a stack of books", "vase": "a potted plant"}
        props = " and ".join(noun.get(p["kind"], f"a {p['kind']}") for p in self.props) or "nothing else"
        return f"light from the {self.light}, with {props}"

    def ground_y(self, t: float, size: int) -> float:
        """Pixel row of a point at depth t (0 = back edge, 1 = front edge) of the surface."""
        return (self.horizon + (self.front - self.horizon) * t) * size

    def depth_scale(self, t: float) -> float:
        """Perspective: things further back (small t) are drawn smaller."""
        return 0.78 + 0.4 * t


def random_scene(rng: np.random.Generator, surface: str | None = None) -> Scene:
    surface = surface or SURFACES[int(rng.integers(len(SURFACES)))]
    if surface == "floor":
        horizon, front = float(rng.uniform(0.42, 0.55)), 1.0
    elif surface == "table":
        horizon, front = float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.86, 0.92))
    else:  # shelf: a shallower board
        horizon, front = float(rng.uniform(0.5, 0.6)), float(rng.uniform(0.82, 0.88))
    ground = (_WOOD if rng.random() < 0.6 else _STONE)[int(rng.integers(4))]
    scene = Scene(
        surface=surface,
        wall=_WALLS[int(rng.integers(len(_WALLS)))],
        wall_pattern=("plain", "stripes", "tiles")[int(rng.integers(3))],
        ground=ground,
        ground_pattern=("wood", "tiles", "plain")[int(rng.integers(3))],
        horizon=horizon,
        front=front,
        light="left" if rng.random() < 0.5 else "right",
        shadow_len=float(rng.uniform(0.55, 0.95)),
        shadow_squash=float(rng.uniform(0.22, 0.34)),
        shadow_alpha=float(rng.uniform(0.45, 0.6)),
    )
    # Props stand at the sides and further back than the product's slot, so they never hide it.
    n = int(rng.integers(1, 3))
    sides = [0, 1] if n == 2 else [int(rng.integers(2))]
    for side in sides:
        kind = PROP_KINDS[int(rng.integers(len(PROP_KINDS)))]
        x = float(rng.uniform(0.08, 0.2)) if side == 0 else float(rng.uniform(0.8, 0.92))
        scene.props.append(prop_spec(rng, kind, x, float(rng.uniform(0.05, 0.35))))
    return scene


def prop_spec(rng, kind: str, x: float, t: float) -> dict:
    h = {"cup": 0.14, "vase": 0.3, "ball": 0.11, "books": 0.12, "candle": 0.2, "flower": 0.2}[kind] * float(rng.uniform(0.85, 1.15))
    colour = tuple(int(c) for c in rng.integers(40, 220, size=3))
    return {"kind": kind, "x": x, "t": t, "h": h, "colour": colour}


def draw_prop(prop: dict, size: int, scale: float = 1.0) -> Image.Image:
    """A prop as an RGBA sprite (bottom row = where it touches the surface)."""
    H = max(6, int(round(prop["h"] * size * scale)))
    kind, c = prop["kind"], tuple(prop["colour"])
    dark = tuple(int(v * 0.6) for v in c)
    if kind == "cup":
        W = int(H * 1.1)
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        d.ellipse([W * 0.55, H * 0.2, W - 1, H * 0.7], outline=c, width=max(1, H // 8))
        d.rectangle([0, 0, W * 0.75, H - 1], fill=c, outline=dark)
    elif kind == "vase":
        W = int(H * 0.55)
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        for i, (dx, dy) in enumerate(((0.5, 0.12), (0.25, 0.2), (0.75, 0.2), (0.4, 0.05), (0.62, 0.08))):
            r = W * 0.2
            d.ellipse([W * dx - r, H * dy - r, W * dx + r, H * dy + r], fill=(40 + 20 * i, 130 + 10 * i, 50))
        d.rectangle([W * 0.46, H * 0.15, W * 0.54, H * 0.5], fill=(50, 110, 50))
        d.polygon([(W * 0.2, H * 0.45), (W * 0.8, H * 0.45), (W * 0.95, H - 1), (W * 0.05, H - 1)], fill=c, outline=dark)
    elif kind == "ball":
        W = H
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        d.ellipse([0, 0, W - 1, H - 1], fill=c, outline=dark)
        d.ellipse([W * 0.25, H * 0.2, W * 0.45, H * 0.38], fill=(255, 255, 255))
    elif kind == "books":
        W = int(H * 1.6)
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        for i in range(3):
            y0, y1 = H * i / 3, H * (i + 1) / 3 - 1
            shade = tuple(min(255, int(v * (0.8 + 0.15 * i))) for v in c)
            d.rectangle([W * 0.05 * (i % 2), y0, W - 1 - W * 0.06 * ((i + 1) % 2), y1], fill=shade, outline=dark)
    elif kind == "flower":  # only ever added by a defect
        W = int(H * 0.7)
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        d.rectangle([W * 0.46, H * 0.3, W * 0.54, H - 1], fill=(40, 130, 40))
        for a in range(6):
            ang = a * np.pi / 3
            cx, cy = W * 0.5 + W * 0.25 * np.cos(ang), H * 0.22 + W * 0.25 * np.sin(ang)
            d.ellipse([cx - W * 0.18, cy - W * 0.18, cx + W * 0.18, cy + W * 0.18], fill=c)
        d.ellipse([W * 0.38, H * 0.22 - W * 0.12, W * 0.62, H * 0.22 + W * 0.12], fill=(250, 210, 40))
    else:  # candle
        W = max(3, int(H * 0.35))
        img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        d.rectangle([0, H * 0.25, W - 1, H - 1], fill=c, outline=dark)
        d.ellipse([W * 0.2, 0, W * 0.8, H * 0.25], fill=(255, 200, 40))
    return img


def _wall(scene: Scene, size: int) -> np.ndarray:
    hy = int(round(scene.horizon * size))
    xs = np.linspace(0.0, 1.0, size, dtype=np.float32)
    # Brighter on the side the light comes from.
    grad = 1.1 - 0.28 * (xs if scene.light == "left" else 1.0 - xs)
    wall = np.asarray(scene.wall, np.float32)[None, None, :] * grad[None, :, None] * np.ones((hy, 1, 1), np.float32)
    step = max(4, size // 12)
    if scene.wall_pattern == "stripes":
        wall[:, (np.arange(size) // step) % 2 == 1] *= 0.93
    elif scene.wall_pattern == "tiles":
        wall[::step] *= 0.85
        wall[:, ::step] *= 0.85
    return wall


def _ground(scene: Scene, size: int) -> np.ndarray:
    hy = int(round(scene.horizon * size))
    fy = int(round(scene.front * size))
    rows = fy - hy
    ts = np.linspace(0.0, 1.0, max(rows, 1), dtype=np.float32)
    base = np.asarray(scene.ground, np.float32)
    xs = np.linspace(0.0, 1.0, size, dtype=np.float32)
    light = 1.05 - 0.15 * (xs if scene.light == "left" else 1.0 - xs)
    g = base[None, None, :] * (0.82 + 0.22 * ts)[:, None, None] * light[None, :, None]
    if scene.ground_pattern == "wood":
        # Planks recede: lines closer together near the back edge.
        for k in range(1, 12):
            y = int(rows * (k / 12) ** 1.6)
            if 0 < y < rows:
                g[y] *= 0.8
    elif scene.ground_pattern == "tiles":
        for k in range(1, 8):
            y = int(rows * (k / 8) ** 1.6)
            if 0 < y < rows:
                g[y] *= 0.78
        # Lines converging to a vanishing point above the centre.
        vx = size / 2
        r = np.arange(rows)
        for k in range(-8, 9):
            x = (vx + (k * size / 6) * (0.35 + 0.65 * (r + 1) / rows)).astype(int)
            ok = (x >= 0) & (x < size)
            g[r[ok], x[ok]] *= 0.78
    return g


def render_background(scene: Scene, size: int) -> np.ndarray:
    """The scene without any product: HxWx3 uint8 (props with their shadows included)."""
    img = np.empty((size, size, 3), np.float32)
    hy = int(round(scene.horizon * size))
    fy = int(round(scene.front * size))
    img[:hy] = _wall(scene, size)
    img[hy:fy] = _ground(scene, size)
    if fy < size:
        lip = max(2, int(size * 0.035))
        edge = np.asarray(scene.ground, np.float32) * 0.62
        img[fy:fy + lip] = edge
        below = np.asarray(scene.wall if scene.surface == "shelf" else (90, 84, 80), np.float32) * 0.55
        img[fy + lip:] = below
    # A window on the light side: the scene shows where its light comes from.
    win = np.asarray([252, 250, 240], np.float32)
    ww, wh = int(size * 0.16), int(hy * 0.5)
    wx = int(size * 0.05) if scene.light == "left" else size - int(size * 0.05) - ww
    wy = int(hy * 0.15)
    if ww > 3 and wh > 3:
        img[wy:wy + wh, wx:wx + ww] = win
        bar = max(1, size // 112)
        frame = np.asarray(scene.wall, np.float32) * 0.6
        img[wy:wy + wh, wx + ww // 2 - bar // 2: wx + ww // 2 + bar - bar // 2] = frame
        img[wy + wh // 2: wy + wh // 2 + bar, wx:wx + ww] = frame
    out = np.clip(img, 0, 255).astype(np.uint8)
    for prop in scene.props:
        sprite = draw_prop(prop, size, scene.depth_scale(prop["t"]))
        x_c = prop["x"] * size
        base = scene.ground_y(prop["t"], size)
        out = compose(out, scene, sprite, x_c, base)[0]
    return out


def shadow_mask(alpha: Image.Image, x0: float, base: float, size: int, direction: int, length: float,
                squash: float, dx: float = 0.0, dy: float = 0.0, roi=None) -> np.ndarray:
    """Float mask (0..1) of the shadow that a sprite standing at (x0, base) casts on the surface:
    each point at height v above the base falls ``direction*length*v`` to the side and
    ``squash*v`` up the image (further back). ``dx, dy`` move the whole shadow. ``roi``
    (ox, oy, w, h) limits the output to that window of the image (default: all of it)."""
    ox, oy, w, hgt = roi or (0, 0, size, size)
    h = alpha.size[1]
    k = direction * length
    c = max(squash, 1e-3)
    b = base + dy - oy
    # Output pixel (x, y) of the window reads sprite pixel (u, r) with v = (b - y)/c its height:
    # r = h - v, u = ox + x - x0 - dx - k*v.
    data = (1.0, k / c, ox - x0 - dx - k * b / c, 0.0, 1.0 / c, h - b / c)
    m = alpha.transform((w, hgt), Image.AFFINE, data, resample=Image.BILINEAR)
    m = m.filter(ImageFilter.BoxBlur(max(1.0, size / 180)))
    return np.asarray(m, np.float32) * (1.0 / 255.0)


def contact_mask(x0: float, x1: float, base: float, size: int, dx: float = 0.0, roi=None) -> np.ndarray:
    """A soft dark ellipse where an object touches the surface (window ``roi`` as in `shadow_mask`)."""
    ox, oy, w, hgt = roi or (0, 0, size, size)
    m = Image.new("L", (w, hgt), 0)
    d = ImageDraw.Draw(m)
    ww = x1 - x0
    hh = max(1.5, ww * 0.06)
    d.ellipse([x0 + dx - ww * 0.04 - ox, base - hh - oy, x1 + dx + ww * 0.04 - ox, base + hh * 0.6 - oy], fill=255)
    m = m.filter(ImageFilter.BoxBlur(max(1.0, size / 200)))
    return np.asarray(m, np.float32) * (1.0 / 255.0)


def compose(bg: np.ndarray, scene: Scene, sprite: Image.Image, x_c: float, base: float, *,
            lift: float = 0.0, sink: float = 0.0, shadows=None, contact: bool = True, contact_dx: float = 0.0):
    """Paste ``sprite`` centred at ``x_c`` with its base on row ``base`` of ``bg`` (a copy is returned).

    ``shadows``: list of dicts ``{direction, length, alpha, dx, dy}`` (default: the scene's own
    shadow); ``lift`` raises the sprite above its base (floating; the shadow stays on the
    surface); ``sink`` hides its bottom ``sink`` pixels under the surface line.
    Returns (image array, info) where info has ``box`` (x0, y0, x1, y1) and ``mask`` (bool
    array of the product's pixels).
    """
    size = bg.shape[0]
    W, H = sprite.size
    x0 = int(round(x_c - W / 2))
    alpha = sprite.getchannel("A")
    if shadows is None:
        shadows = [dict(direction=scene.shadow_dir, length=scene.shadow_len, alpha=scene.shadow_alpha, dx=0.0, dy=0.0)]
    out = bg.copy()
    # Shadows are computed only in the window they can reach (speed: most of the image is untouched).
    pad = int(size / 90) + 3
    left = min([x0 + min(0.0, s.get("dx", 0.0)) - (abs(s["length"]) * H if s["direction"] < 0 else 0) for s in shadows]
               + [x0 + min(0.0, contact_dx) - W * 0.1])
    right = max([x0 + W + max(0.0, s.get("dx", 0.0)) + (abs(s["length"]) * H if s["direction"] > 0 else 0) for s in shadows]
                + [x0 + W + max(0.0, contact_dx) + W * 0.1])
    top_y = base - scene.shadow_squash * H - max([abs(s.get("dy", 0.0)) for s in shadows] + [0.0])
    ox, oy = max(0, int(left) - pad), max(int(round(scene.horizon * size)), int(top_y) - pad)
    ox1, oy1 = min(size, int(right) + pad), min(size, int(base + W * 0.1) + pad)
    if (shadows or contact) and ox1 > ox and oy1 > oy:
        roi = (ox, oy, ox1 - ox, oy1 - oy)
        shade = np.zeros((roi[3], roi[2]), np.float32)
        for s in shadows:
            m = shadow_mask(alpha, x0, base, size, s["direction"], s["length"], scene.shadow_squash,
                            s.get("dx", 0.0), s.get("dy", 0.0), roi=roi)
            np.maximum(shade, m * s["alpha"], out=shade)
        if contact:
            np.maximum(shade, contact_mask(x0, x0 + W, base, size, contact_dx, roi=roi) * 0.75, out=shade)
        # Cast shadows lie on the support surface only (the window starts at its back edge).
        region = out[oy:oy1, ox:ox1].astype(np.float32)
        region *= (1.0 - shade)[..., None]
        out[oy:oy1, ox:ox1] = region.astype(np.uint8)
    visible = sprite
    if sink > 0:
        keep = max(1, H - int(round(sink)))
        visible = sprite.crop((0, 0, W, keep))
    top = int(round(base - lift)) - visible.size[1]
    img = Image.fromarray(out)
    img.paste(visible, (x0, top), visible)
    mask = np.zeros((size, size), bool)
    a = np.asarray(visible.getchannel("A")) > 0
    ys0, xs0 = max(0, top), max(0, x0)
    ys1, xs1 = min(size, top + a.shape[0]), min(size, x0 + a.shape[1])
    if ys1 > ys0 and xs1 > xs0:
        mask[ys0:ys1, xs0:xs1] = a[ys0 - top: ys1 - top, xs0 - x0: xs1 - x0]
    if sink > 0:
        # The surface closes over the cut: a dark seam where the product enters it.
        d = ImageDraw.Draw(img)
        d.line([(x0 - 1, top + visible.size[1]), (x0 + W, top + visible.size[1])], fill=(40, 35, 30), width=max(1, size // 112))
    info = {"box": [x0, top, x0 + W, top + visible.size[1]], "mask": mask, "base": float(base)}
    return np.asarray(img), info
