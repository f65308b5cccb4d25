"""Real photographs for tests: scikit-image's bundled sample images arranged as screening items.

`make_items(root)` writes one folder per photo (``original.jpg``; candidates ``A.png`` a crop,
``b.JPG`` mirrored, ``C.png`` desaturated, ``D.webp`` rotated: mixed types and letter case), plus
``broken/`` whose B is not an image and ``missing/`` without a D. Import it with
``from photos import make_items`` (tests/ is on the path, as for chat_server).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

PHOTOS = ("astronaut", "chelsea", "coffee")  # bundled with scikit-image (no download)


def photo(name: str, side: int = 128) -> Image.Image:
    import skimage.data  # a test dependency (pyproject's dev extra)

    img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    img.thumbnail((side, side))
    return img


def make_items(root: Path, broken: bool = True) -> Path:
    for name in PHOTOS:
        img = photo(name)
        item = root / name
        item.mkdir(parents=True)
        w, h = img.size
        img.save(item / "original.jpg")
        img.crop((w // 8, h // 8, w, h)).save(item / "A.png")
        ImageOps.mirror(img).save(item / "b.JPG")  # names are case-insensitive
        ImageEnhance.Color(img).enhance(0.2).save(item / "C.png")
        img.rotate(8).save(item / "D.webp")
    if broken:
        bad = root / "broken"
        bad.mkdir()
        for f in (root / "astronaut").iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
        (bad / "b.JPG").write_bytes(b"not an image")
        missing = root / "missing"
        missing.mkdir()
        for f in (root / "chelsea").iterdir():
            if not f.name.startswith("D"):
                (missing / f.name).write_bytes(f.read_bytes())
    return root
