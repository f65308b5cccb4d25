"""The app's Blocks: a Screen tab (the model reasons over an original and four candidates) and
an Annotate tab (queues of the annotation store, keyboard-driven labelling).

    from app.ui import build_demo, launch_kwargs
    demo = build_demo(screener, store, index)
    demo.launch(server_name="127.0.0.1", **launch_kwargs())

Every event has an ``api_name`` (``/screen``, ``/load_sample``, ``/load_queue``, ``/annotate``,
``/annotate_without_reasoning``, ``/undo``, ``/move``, ``/ask_model``, ``/use_suggestion``,
``/import_hard_cases``, ``/unmark_hard``, ``/stats``) so `gradio_client` drives the same code
paths as the browser. Handlers live in `app.handlers`; the Annotate tab is wired in
`app.ui_annotate`. A `UserError` (bad input) shows inline in the tab's status line and leaves
the other outputs as they were; an unexpected failure becomes a `gr.Error` whose message
carries no server path. Gradio 6 takes custom JavaScript and CSS in ``launch()``, hence
`launch_kwargs`.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import gradio as gr

from app import handlers as H
from labkit.metrics import LETTERS

SHORTCUTS_JS = Path(__file__).with_name("shortcuts.js")
MAX_PICK = 2000  # samples offered in the Screen tab's picker
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

For each rejected candidate pick the defect tag(s): *appearance_deformation* (product changed),
*physical_shadow* (lighting/shadow), *placement_layout* (floating, impossible support, scale),
*extension_rationality* (invented or duplicated content). Untagged rejections are saved as
*unspecified*. Write reasoning that explains your answer, candidate by candidate, or press
**Use suggestion** to start from the model's (it must end in your answer; **Save without
reasoning** drops it). Other annotators' answers stay hidden while you label.

**Keyboard** (outside text fields; **Esc** leaves a text field): **A B C D** toggle ·
**N** none · **Enter** save and next · **U** undo your last label · **F** flag for review ·
**← / →** previous / next. Click an image to zoom, or use its full-screen button.
"""


def launch_kwargs() -> dict:
    """The ``launch()`` arguments that carry the keyboard shortcuts and styles."""
    return {"head": f"<script>{SHORTCUTS_JS.read_text()}</script>", "css": CSS}


def _annotator(request, default: str) -> str:
    name = getattr(request, "username", None) if request is not None else None
    return name or default


def inline_error(exc: Exception | str) -> str:
    """A UserError as the inline status line (markdown), without server paths."""
    return f"<span class='inline-error'>Not done:</span> {H.client_message(str(exc))}"


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
    from app.images import display_image
    from app.ui_annotate import build_annotate_tab

    mined = dict(mined or {})
    # Dataset images shown in the app are written here once (see `handlers.image_file`).
    image_dir = Path(tempfile.mkdtemp(prefix="labkit-app-images-", dir=temp_dir))
    atexit.register(shutil.rmtree, image_dir, ignore_errors=True)

    def files(images) -> list[str]:
        # Small images are upscaled (sharp pixels) for display only; the model gets the originals.
        return [H.image_file(display_image(im), image_dir) for im in images]

    def role_of(request) -> str:
        if users is None:
            return "admin"
        user = users.get(_annotator(request, ""))
        return user.role if user else "annotator"

    def fail(exc: Exception):
        raise gr.Error(H.client_message(str(exc)), duration=None) from exc

    heading, warning = model_heading(title, screener, model_info)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(heading, elem_id="app-title")
        if warning:
            gr.Markdown(f"**Warning:** {warning}", elem_id="model-warning")
        with gr.Tabs():
            # ------------------------------------------------------------------ Screen
            with gr.Tab("Screen", id="screen"):
                truth = gr.State(None)  # the picked dataset sample: {"id", "answer"}; None after an upload
                with gr.Row():
                    original = gr.Image(label="Original", type="filepath", height=360, elem_id="screen-original",
                                        sources=["upload", "clipboard"])
                    with gr.Column():
                        form = gr.Radio(["cot", "direct"], value="cot", label="Prompt",
                                        info="cot: reasoning then answer; direct: the answer only", elem_id="screen-form")
                        if index is not None:
                            hard = set(store.queue("hard", dataset=index.name)) if store is not None else set()
                            hard_ids = {k.sample_id for k in hard}
                            # Hard cases first; a huge split (exploration) is cut to keep the page light.
                            ids = sorted(index.ids(), key=lambda s: (s not in hard_ids, s))[:MAX_PICK]
                            pick = gr.Dropdown([(f"{s} (hard case)" if s in hard_ids else s, s) for s in ids], value=None,
                                               label="...or pick a dataset sample", elem_id="screen-pick")
                        run = gr.Button("Screen", variant="primary", elem_id="screen-btn")
                        status = gr.Markdown(elem_id="screen-status")
                cand_images, cand_notes = [], []
                with gr.Row():
                    for letter in LETTERS:
                        with gr.Column(min_width=200):
                            cand_images.append(gr.Image(label=letter, type="filepath", height=300,
                                                        elem_id=f"screen-{letter}", sources=["upload", "clipboard"]))
                            cand_notes.append(gr.Markdown(f"### {letter}", elem_id=f"verdict-{letter}",
                                                          elem_classes=["verdict"]))
                reasoning_view = gr.HTML(elem_id="reasoning-view", label="Reasoning")
                with gr.Row():
                    reasoning = gr.Textbox(label="Raw response (streams as the model writes)", lines=4, max_lines=12,
                                           interactive=False, elem_id="reasoning", scale=3)
                    answer = gr.Textbox(label="Parsed answer", interactive=False, elem_id="answer", scale=1)
                screen_outputs = [reasoning, answer, *cand_notes, status, reasoning_view]

                def screen(orig, a, b, c, d, prompt_form, picked):
                    def inline(msg):
                        return (*[gr.skip()] * 6, inline_error(msg), gr.skip())

                    if screener is None:
                        yield inline("no model is loaded: start the app with --model")
                        return
                    try:
                        note = ""
                        if picked and picked.get("id"):
                            images = index.images(picked["id"])  # the dataset's own pixels, not the display copies
                        else:
                            images = H.collect_images(orig, a, b, c, d, max_pixels)
                            note = H.downscale_note(images)
                        steps = H.screen_stream(screener, images, prompt_form or "cot",
                                                truth=(picked or {}).get("answer"))
                        for step in H.throttle(steps, UI_INTERVAL):
                            yield (step.reasoning, step.answer_text(), *[step.per_candidate[l] for l in LETTERS],
                                   step.status + note, H.reasoning_html(step.reasoning, step.done))
                    except H.UserError as exc:
                        yield inline(exc)
                    except RuntimeError as exc:
                        fail(exc)

                # preprocess=False: the handler gets Gradio's upload record and reads the file
                # itself, so a corrupt, non-image or huge upload gets a message naming it.
                run.click(screen, [original, *cand_images, form, truth], screen_outputs,
                          api_name="screen", preprocess=False, concurrency_id="model", concurrency_limit=1)
                for image in (original, *cand_images):
                    # A user upload replaces the picked sample: its label no longer applies.
                    image.upload(lambda: None, None, truth, api_name=False)
                    image.clear(lambda: None, None, truth, api_name=False)

                if index is not None:
                    def load_sample(sample_id, request: gr.Request):
                        if not sample_id:
                            return (*[gr.skip()] * 5, inline_error("pick a sample first"), gr.skip())
                        try:
                            images = index.images(sample_id)
                        except (H.UserError, ValueError) as exc:
                            return (*[gr.skip()] * 5, inline_error(exc), gr.skip())
                        label = index.get(sample_id).get("answer")
                        # Plain annotators label blind: the true label shows to reviewers and without login.
                        if label and role_of(request) not in H.REVIEW_ROLES:
                            label = None
                        note = f"Loaded sample `{sample_id}`" + (f" (true label: **{label}**)" if label else "")
                        return (*files(images), note, {"id": sample_id, "answer": label})

                    pick.change(load_sample, [pick], [original, *cand_images, status, truth], api_name="load_sample")

            # ------------------------------------------------------------------ Annotate
            if store is not None and index is not None:
                build_annotate_tab(demo, screener, store, index, annotator=annotator, mined=mined,
                                   prefill_cot=prefill_cot, files=files, role_of=role_of, login=users is not None,
                                   interval=UI_INTERVAL)
    return demo
