"""The lab's Gradio app: screen an original and four candidates with a model, and annotate.

Modules, lowest first (each imports only those above it):

- `app.images`: uploads decoded with bounded memory (a pixel cap, huge PNGs decoded strip by
  strip) and sharp display copies of small images.
- `app.uploads`: `UserError` (bad input from the visitor), reading uploaded images, messages
  without server paths.
- `app.annotation`: dataset samples, labels in the annotation store, progress and agreement
  figures, login (pure functions, no Gradio).
- `app.handlers`: the screening handlers (the model's streamed reasoning, split per
  candidate), re-exporting `app.uploads` and `app.annotation`, so ``from app import handlers
  as H`` reaches every handler.
- `app.ui_common`: styles, guidelines, roles, inline errors (what both tabs share);
  `app.ui_screen` and `app.ui_annotate`: the two tabs; `app.ui`: ``build_demo(...) ->
  gr.Blocks`` and ``launch_kwargs()`` (the keyboard-shortcut JavaScript and CSS, which Gradio 6
  takes in ``launch``).
- `app.main`: ``serve(...)``, used by ``labkit app`` and ``make app``.

Importing `app` imports nothing (no Gradio, no torch). Run the app with ``labkit app --model
data/models/small-internvl --store data/annotations.sqlite`` (or ``python -m app ...``).
"""
