"""The lab's Gradio app: screen an original and four candidates with a model, and annotate.

Modules, lowest first (each imports only those above it):

- `labkit.app.images`: uploads decoded with bounded memory (a pixel cap, huge PNGs decoded
  strip by strip) and sharp display copies of small images.
- `labkit.app.uploads`: `UserError` (bad input from the visitor), reading uploaded images,
  messages without server paths.
- `labkit.app.annotation`: dataset samples, labels in the annotation store, progress and
  agreement figures, login (pure functions, no Gradio).
- `labkit.app.handlers`: the screening handlers (the model's streamed reasoning, split per
  candidate), re-exporting `labkit.app.uploads` and `labkit.app.annotation`, so
  ``from labkit.app import handlers as H`` reaches every handler.
- `labkit.app.ui_common`: styles, guidelines, roles, inline errors (what both tabs share);
  `labkit.app.ui_screen` and `labkit.app.ui_annotate`: the two tabs; `labkit.app.ui`:
  ``build_demo(...) -> gr.Blocks`` and ``launch_kwargs()`` (the keyboard-shortcut JavaScript
  and CSS, which Gradio 6 takes in ``launch``).
- `labkit.app.main`: ``serve(...)``, used by ``labkit app`` and ``make app``.

Importing `labkit.app` imports nothing (no Gradio, no torch). Run the app with ``labkit app
--model data/models/small-internvl --store data/annotations.sqlite`` (or ``python -m labkit.app``).
"""
