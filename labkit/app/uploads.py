"""Uploads and the app's user-facing errors: `UserError`, reading uploaded images, messages for clients.

The lowest module of the app (no other `app` module imported but `labkit.app.images`): the handlers
(`labkit.app.handlers`, `labkit.app.annotation`) and the UI raise and catch `UserError` from here.

- `UserError`: bad input from the person using the app; the UI shows the message and keeps serving.
- `upload_path`, `read_upload` (an uploaded file as Gradio hands it over -> RGB image, clear
  error otherwise), `collect_images` (exactly five), `downscale_note`.
- `client_message`: a message with server paths replaced (what a visitor may see).
"""
from __future__ import annotations

import os
import re
from typing import Any

from PIL import Image

from labkit.app.images import DEFAULT_MAX_PIXELS, ImageTooLarge, open_capped
from labkit.data import SampleError, open_image

WHAT = ("original image", "candidate A", "candidate B", "candidate C", "candidate D")


class UserError(ValueError):
    """Bad input from the person using the app; the UI shows the message and keeps serving."""


# ----------------------------------------------------------------------------- uploads

def upload_path(value: Any) -> str | None:
    """The server-side path of an upload as Gradio hands it over (a path or a FileData dict).

    Only Gradio's own upload cache paths reach here: Gradio checks that a client-sent file is in
    its upload folder before calling a handler, and the app never takes a path from a textbox.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("path")
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    return None


def read_upload(value: Any, what: str = "image", max_pixels: int | None = None):
    """An uploaded image as RGB PIL; raises UserError naming the image and the problem.

    Accepts a PIL image (dataset samples), a path or a Gradio FileData dict. Corrupt and
    non-image files, images over PIL's decompression-bomb limit and tiny images are refused.
    A file over ``max_pixels`` (default `labkit.app.images.DEFAULT_MAX_PIXELS`) is downscaled while it
    is decoded, so a huge upload costs bounded memory (`labkit.app.images.open_capped`).
    """
    if value is None:
        raise UserError(f"{what} is missing: upload it (five images are needed: the original and A-D)")
    if not isinstance(value, Image.Image):
        path = upload_path(value)
        if not path:
            raise UserError(f"{what}: not an uploaded file")
        try:
            value = open_capped(path, max_pixels or DEFAULT_MAX_PIXELS)
        except ImageTooLarge as exc:
            raise UserError(f"{what} {exc}") from exc
        except Image.DecompressionBombError as exc:
            raise UserError(f"{what} is too large ({client_message(str(exc))})") from exc
        except Exception as exc:  # PIL raises many types for corrupt data
            raise UserError(f"{what} is unreadable ({type(exc).__name__}: {client_message(str(exc))})") from exc
    try:
        return open_image(value, what=what, sample_id="upload")
    except SampleError as exc:
        raise UserError(client_message(exc.problem)) from exc


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.\-~@+]+){2,}/?|'/[^'\s]+'")


def client_message(text: str) -> str:
    """``text`` with absolute server paths replaced by ``<path>`` (what a visitor may see)."""
    return _PATH.sub("<path>", str(text))


def downscale_note(images: list) -> str:
    """" Downscaled on load: candidate D 12000x12000 -> 1000x1000." for images over the pixel cap."""
    done = [f"{what} {im.info['original_size'][0]}x{im.info['original_size'][1]} -> {im.width}x{im.height}"
            for what, im in zip(WHAT, images) if im.info.get("original_size")]
    return (" Downscaled on load: " + "; ".join(done) + ".") if done else ""


def collect_images(original, a, b, c, d, max_pixels: int | None = None) -> list:
    """The five images in order, each checked; every problem is named in one message."""
    values = [original, a, b, c, d]
    missing = [w for w, v in zip(WHAT, values) if v is None]
    if missing:
        raise UserError(
            f"{len(values) - len(missing)} of 5 images given; missing: {', '.join(missing)}. "
            "Upload the original and all four candidates A-D."
        )
    images, problems = [], []
    for what, value in zip(WHAT, values):
        try:
            images.append(read_upload(value, what, max_pixels))
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise UserError("; ".join(problems))
    return images
