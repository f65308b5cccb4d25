"""The app's Blocks: a Screen tab (the model reasons over an original and four candidates) and
an Annotate tab (queues of the annotation store, keyboard-driven labelling).

    from labkit.app.ui import build_demo, launch_kwargs
    demo = build_demo(screener, store, index)
    demo.launch(server_name="127.0.0.1", **launch_kwargs())

Every event has an ``api_name`` (``/screen``, ``/load_sample``, ``/load_queue``, ``/annotate``,
``/annotate_without_reasoning``, ``/undo``, ``/move``, ``/ask_model``, ``/use_suggestion``,
``/import_hard_cases``, ``/unmark_hard``, ``/stats``) so `gradio_client` drives the same code
paths as the browser. Handlers live in `labkit.app.handlers`; the Screen tab is built in
`labkit.app.ui_screen`, the Annotate tab in `labkit.app.ui_annotate`, and what both share
(styles, guidelines, roles, inline errors) in `labkit.app.ui_common`. A `UserError` (bad input)
shows inline in the tab's status line and leaves the other outputs as they were; an unexpected
failure becomes a `gr.Error` whose message carries no server path. Gradio 6 takes custom
JavaScript and CSS in ``launch()``, hence `launch_kwargs`.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import gradio as gr  # the UI modules need it; `labkit.app.main` imports them only when it serves

from labkit.app import handlers as H
from labkit.app.ui_annotate import build_annotate_tab
from labkit.app.ui_common import CSS, UI_INTERVAL, image_files, role_lookup
from labkit.app.ui_screen import build_screen_tab

SHORTCUTS_JS = Path(__file__).with_name("shortcuts.js")


def launch_kwargs() -> dict:
    """The ``launch()`` arguments that carry the keyboard shortcuts and styles."""
    return {"head": f"<script>{SHORTCUTS_JS.read_text()}</script>", "css": CSS}


def model_heading(title: str, screener, model_info: dict | None) -> tuple[str, str]:
    """The page title line and the warning line (markdown; "" when nothing to warn about)."""
    info = model_info or {}
    if screener is None:
        return f"## {title} · no model loaded", ""
    name = info.get("arm") or screener.name
    line = f"## {title} · model **{name}**"
    if info.get("score") is not None:
        line += f" · test score **{info['score']:.1f}**"
        if info.get("random") is not None:
            line += f" (random guess {info['random']:.1f})"
    return line, info.get("warning") or ""


def build_demo(
    screener: H.Screener | None,
    store=None,
    index: H.SampleIndex | None = None,
    *,
    annotator: str = "annotator",
    mined: dict[str, str] | None = None,
    prefill_cot: bool = True,
    title: str = "HCM-GRPO screening lab",
    users: dict[str, H.User] | None = None,
    model_info: dict | None = None,
    max_pixels: int | None = None,
    temp_dir: str | Path | None = None,
):
    """The app. ``screener`` may be None (annotation only); ``store``/``index`` may be None
    (screening only). ``annotator`` names the labeller when the app runs without login;
    ``users`` (the auth file) gives each login its role (no login: the local user is admin).
    ``model_info`` (``arm``, ``score``, ``random``, ``warning``) titles the page;
    ``max_pixels`` caps each uploaded image; ``temp_dir`` holds the images the app serves."""
    mined = dict(mined or {})
    # Dataset images shown in the app are written here once (see `handlers.image_file`).
    image_dir = Path(tempfile.mkdtemp(prefix="labkit-app-images-", dir=temp_dir))
    atexit.register(shutil.rmtree, image_dir, ignore_errors=True)
    files, role_of = image_files(image_dir), role_lookup(users)

    heading, warning = model_heading(title, screener, model_info)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(heading, elem_id="app-title")
        if warning:
            gr.Markdown(f"**Warning:** {warning}", elem_id="model-warning")
        with gr.Tabs():
            build_screen_tab(screener, store, index, files=files, role_of=role_of, max_pixels=max_pixels,
                             interval=UI_INTERVAL)
            if store is not None and index is not None:
                build_annotate_tab(demo, screener, store, index, annotator=annotator, mined=mined,
                                   prefill_cot=prefill_cot, files=files, role_of=role_of, login=users is not None,
                                   interval=UI_INTERVAL)
    return demo
