"""Images in the app with bounded memory: open an upload downscaled to a pixel cap, and make
small images readable on screen.

- `open_capped(path, max_pixels)`: an RGB image of at most ``max_pixels`` pixels. A PNG over
  the cap is decoded strip by strip (each strip is re-wrapped as a small PNG that PIL decodes,
  then box-reduced), so a 12000x12000 upload never exists at full size in memory; a JPEG over
  the cap is decoded at a reduced scale (``draft``); other formats over the cap are decoded
  whole only up to `MAX_FULL_DECODE_PIXELS`, else refused. The models see <= 448 px anyway.
- `display_image(img, min_side)`: a copy upscaled by an integer factor with nearest-neighbour
  (sharp pixels) for display; what the model sees is unchanged.

Measured in ``benchmarks/app_memory.py`` (server memory for a 12000x12000 upload).
"""
from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

from PIL import Image

DEFAULT_MAX_PIXELS = 1024 * 1024     # per image; configurable with `labkit app --max-pixels`
MAX_FULL_DECODE_PIXELS = 24_000_000  # formats without a low-memory path: ~100 MB decoded at most
_STRIP_ROWS = 64                     # rows of one PNG strip before reduction (about 3 MB at 12000 px RGB)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel (8-bit)


class ImageTooLarge(ValueError):
    """An image over the cap that cannot be decoded within bounded memory."""


def fit_factor(width: int, height: int, max_pixels: int) -> int:
    """The smallest integer reduction factor that brings width x height within max_pixels."""
    if width * height <= max_pixels:
        return 1
    f = max(2, math.ceil(math.sqrt(width * height / max_pixels)))
    while math.ceil(width / f) * math.ceil(height / f) > max_pixels:
        f += 1
    return f


def open_capped(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` as RGB with at most ``max_pixels`` pixels (see the module docstring).

    PIL errors (unreadable file, decompression bomb) propagate for the caller to name;
    `ImageTooLarge` when no bounded-memory path exists for this file.
    """
    img = Image.open(path)  # lazy: the header only (and PIL's decompression-bomb check)
    width, height = img.size
    f = fit_factor(width, height, max_pixels)
    if f == 1:
        img.load()
        return img if img.mode == "RGB" else img.convert("RGB")
    out = _reduced(img, path, f, max_pixels)
    out.info["original_size"] = (width, height)  # the app says what it downscaled
    return out


def _reduced(img, path, f: int, max_pixels: int) -> Image.Image:
    width, height = img.size
    if img.format == "PNG":
        info = _png_header(path)
        if info is not None:
            img.close()
            return _png_reduced(path, info, f)
    if img.format == "JPEG":
        img.draft("RGB", (math.ceil(width / f), math.ceil(height / f)))  # decodes at 1/2, 1/4 or 1/8 scale
    elif width * height > MAX_FULL_DECODE_PIXELS:
        raise ImageTooLarge(
            f"is too large to open safely ({width}x{height} {img.format or 'image'}); "
            f"downscale it below {MAX_FULL_DECODE_PIXELS // 1_000_000} megapixels, or upload a PNG or JPEG"
        )
    img.load()
    out = img if img.mode == "RGB" else img.convert("RGB")
    out.thumbnail(_fit_size(width, height, max_pixels), Image.Resampling.BOX)
    return out


def _fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    f = fit_factor(width, height, max_pixels)
    return max(1, math.ceil(width / f)), max(1, math.ceil(height / f))


def _chunks(fh):
    """(type, data) of each PNG chunk after the signature."""
    while True:
        head = fh.read(8)
        if len(head) < 8:
            return
        length, ctype = struct.unpack(">I4s", head)
        data = fh.read(length)
        fh.read(4)  # CRC (PIL checks the strips it decodes)
        yield ctype, data
        if ctype == b"IEND":
            return


def _png_header(path) -> dict | None:
    """IHDR fields and the palette chunks, or None when the strip decoder does not apply
    (interlaced, not 8-bit)."""
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIGNATURE:
            return None
        info: dict = {"extra": []}
        for ctype, data in _chunks(fh):
            if ctype == b"IHDR":
                w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
                if depth != 8 or interlace or colour not in _CHANNELS:
                    return None
                info.update(width=w, height=h, colour=colour, ihdr=data)
            elif ctype in (b"PLTE", b"tRNS"):
                info["extra"].append((ctype, data))
            elif ctype == b"IDAT":
                return info if "ihdr" in info else None
    return None


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def _strip_png(info: dict, rows: int, filtered: bytes) -> bytes:
    ihdr = struct.pack(">II", info["width"], rows) + info["ihdr"][8:]
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", ihdr)]
    parts += [_chunk(t, d) for t, d in info["extra"]]
    parts += [_chunk(b"IDAT", zlib.compress(filtered, 0)), _chunk(b"IEND", b"")]
    return b"".join(parts)


def _png_reduced(path, info: dict, f: int) -> Image.Image:
    """Decode a non-interlaced 8-bit PNG reduced by ``f``, holding one strip at a time.

    PNG rows are filtered against the row above, so each strip is prefixed with the previous
    strip's last row, already reconstructed and stored unfiltered (filter type 0).
    """
    width, height = info["width"], info["height"]
    row_bytes = 1 + width * _CHANNELS[info["colour"]]
    strip_rows = f * max(1, _STRIP_ROWS // f)
    out = Image.new("RGB", (math.ceil(width / f), math.ceil(height / f)))
    inflate = zlib.decompressobj()
    pending = bytearray()
    previous: bytes | None = None  # the last reconstructed row, raw
    y = 0

    def flush(rows: int):
        nonlocal previous, y
        data = bytes(pending[: rows * row_bytes])
        del pending[: rows * row_bytes]
        prefix = b"" if previous is None else b"\x00" + previous
        strip = Image.open(io.BytesIO(_strip_png(info, rows + (previous is not None), prefix + data)))
        strip.load()
        if previous is not None:
            strip = strip.crop((0, 1, width, rows + 1))
        previous = strip.crop((0, rows - 1, width, rows)).tobytes()
        rgb = strip if strip.mode == "RGB" else strip.convert("RGB")
        out.paste(rgb.reduce(f), (0, y // f))
        y += rows

    with open(path, "rb") as fh:
        fh.read(8)
        for ctype, data in _chunks(fh):
            if ctype != b"IDAT":
                continue
            while data:
                # max_length bounds each inflate step: a tiny IDAT may expand to hundreds of MB.
                pending += inflate.decompress(data, strip_rows * row_bytes)
                data = inflate.unconsumed_tail
                while len(pending) >= strip_rows * row_bytes and y + strip_rows <= height:
                    flush(strip_rows)
    pending += inflate.flush()
    while y < height:
        rows = min(strip_rows, height - y)
        if len(pending) < rows * row_bytes:
            raise ValueError(f"truncated PNG: {y + len(pending) // row_bytes} of {height} rows")
        flush(rows)
    return out


def display_image(img: Image.Image, min_side: int = 384) -> Image.Image:
    """``img`` upscaled by an integer factor (nearest neighbour: sharp pixels) so its shorter
    side reaches ``min_side``; unchanged when it is already that large."""
    factor = math.ceil(min_side / max(1, min(img.size)))
    if factor <= 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
