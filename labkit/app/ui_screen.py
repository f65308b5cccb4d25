"""The Screen tab of the app (added by `labkit.app.ui.build_demo`): the model reasons over an original
and four candidates, uploaded or picked from the dataset, and its reasoning streams in.

Events: ``/screen`` (the model, one at a time) and ``/load_sample`` (a dataset sample into the
image boxes; its true label shows only to reviewers, admins and without login).
"""
from __future__ import annotations

import gradio as gr  # the UI modules need it; `labkit.app.main` imports them only when it serves

from labkit.app import handlers as H
from labkit.app.ui_common import UI_INTERVAL, inline_error
from labkit.metrics import LETTERS

MAX_PICK = 2000  # samples offered in the Screen tab's picker


def _fail(exc: Exception):
    raise gr.Error(H.client_message(str(exc)), duration=None) from exc


def build_screen_tab(screener, store, index, *, files, role_of, max_pixels: int | None = None,
                     interval: float = UI_INTERVAL) -> None:
    """Add the Screen tab (inside the Blocks' Tabs context). ``screener`` may be None (a message
    asks for --model); ``index`` None: uploads only. ``files`` and ``role_of``: see `labkit.app.ui_common`."""
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
                for step in H.throttle(steps, interval):
                    yield (step.reasoning, step.answer_text(), *[step.per_candidate[l] for l in LETTERS],
                           step.status + note, H.reasoning_html(step.reasoning, step.done))
            except H.UserError as exc:
                yield inline(exc)
            except RuntimeError as exc:
                _fail(exc)

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
