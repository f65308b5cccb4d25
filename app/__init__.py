"""The lab's Gradio app: screen an original and four candidates with a model, and annotate.

- `app.handlers`: pure functions (no Gradio): reading uploads, streaming the model's
  reasoning, splitting it per candidate; `app.annotation` (re-exported by `app.handlers`):
  dataset samples, labels in the annotation store, progress and agreement figures, login.
- `app.images`: uploads decoded with bounded memory (a pixel cap, huge PNGs decoded strip by
  strip) and sharp display copies of small images.
- `app.ui`: ``build_demo(...) -> gr.Blocks`` (the Screen tab; the Annotate tab is wired in
  `app.ui_annotate`) and ``launch_kwargs()`` (the keyboard-shortcut JavaScript and CSS, which
  Gradio 6 takes in ``launch``).
- `app.main`: ``serve(...)``, used by ``labkit app`` and ``make app``.

Run it with ``labkit app --model data/models/small-internvl --store data/annotations.sqlite``.
"""
from __future__ import annotations

__all__ = ["build_demo", "launch_kwargs", "serve"]


def __getattr__(name):
    # Lazy: importing `app` must not import gradio or torch.
    if name in ("build_demo", "launch_kwargs"):
        from app import ui

        return getattr(ui, name)
    if name == "serve":
        from app.main import serve

        return serve
    raise AttributeError(name)
