"""Pieces both tabs of the app share (`labkit.app.ui_screen`, `labkit.app.ui_annotate`, joined by `labkit.app.ui`):
styles, the annotation guidelines, who the visitor is and what role they have, inline error
lines, and the display copies of dataset images. No Gradio import here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from labkit.app.handlers import User, client_message, image_file
from labkit.app.images import display_image
from labkit.data import DIMENSION_GUIDES

# Streamed updates at most every 40 ms: a browser renders each one (faster bursts would be
# drawn only once per frame anyway, and seven outputs per update cost rendering time).
UI_INTERVAL = 0.04

CSS = """
.zoomable img { cursor: zoom-in; transition: transform 0.1s ease-out; width: 100%; height: 100%; object-fit: contain; }
.zoomable img.zoomed { transform: scale(2.5); cursor: zoom-out; }
.zoomable .image-container, .zoomable .image-frame { overflow: hidden; }
#reasoning textarea { font-family: ui-monospace, monospace; }
[id^=screen-] img { width: 100%; height: 100%; object-fit: contain; }
.verdict { min-height: 6em; max-height: 18em; overflow-y: auto; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; font-size: 0.85em; font-weight: 600;
         color: #fff; vertical-align: middle; }
.badge-accepted { background: #0a7d32; } .badge-rejected { background: #b3261e; }
.badge-unknown { background: #777; } .badge-invalid { background: #9a6700; }
.badge-note { background: #e8e8e8; color: #333; font-weight: 400; }
.think { background: #f3f0fa; border-left: 4px solid #7a4fb3; padding: 0.6em 0.8em; white-space: pre-wrap;
         font-family: ui-monospace, monospace; font-size: 0.9em; max-height: 22em; overflow-y: auto; }
.final-answer { margin-top: 0.5em; font-weight: 600; }
#model-warning { background: #fff4e5; border: 1px solid #e0a040; border-radius: 6px; padding: 0.4em 0.8em; }
.inline-error { color: #b3261e; font-weight: 600; }
"""

GUIDELINES = """
**Task.** The first image is the original product photo; A-D were generated from it. Tick every
candidate that meets both requirements, or **N** when none does.

1. **Nothing beyond the original, product unchanged** (most important). Any change to the product's
   shape, colour, text or quantity, or any invented item, rejects the image however pretty it is.
2. **Physics.** Shadows agree with the scene's light; the product rests on a surface at a plausible
   size and angle; nothing floats or sinks.

For each rejected candidate pick the defect tag(s): {tags}. Untagged rejections are saved as
*unspecified*. Write reasoning that explains your answer, candidate by candidate, or press
**Use suggestion** to start from the model's (it must end in your answer; **Save without
reasoning** drops it). Other annotators' answers stay hidden while you label.

**Keyboard** (outside text fields; **Esc** leaves a text field): **A B C D** toggle ·
**N** none · **Enter** save and next · **U** undo your last label · **F** flag for review ·
**← / →** previous / next. Click an image to zoom, or use its full-screen button.
""".format(tags=", ".join(f"*{d}* ({w})" for d, w in DIMENSION_GUIDES.items()))


def annotator_of(request, default: str) -> str:
    """The logged-in name of a request, else ``default`` (no login)."""
    name = getattr(request, "username", None) if request is not None else None
    return name or default


def inline_error(exc: Exception | str) -> str:
    """A UserError as the inline status line (markdown), without server paths."""
    return f"<span class='inline-error'>Not done:</span> {client_message(str(exc))}"


def image_files(image_dir: str | Path) -> Callable[[list], list[str]]:
    """``files(images) -> paths``: the images as content-named files in ``image_dir`` (see
    `labkit.app.handlers.image_file`). Small images are upscaled (sharp pixels) for display only; the
    model gets the originals."""
    def files(images) -> list[str]:
        return [image_file(display_image(im), image_dir) for im in images]

    return files


def role_lookup(users: dict[str, User] | None) -> Callable[[object], str]:
    """``role_of(request) -> role``: the login's role in ``users`` (the auth file); "annotator"
    for a name not listed; "admin" without login (the local user)."""
    def role_of(request) -> str:
        if users is None:
            return "admin"
        user = users.get(annotator_of(request, ""))
        return user.role if user else "annotator"

    return role_of
