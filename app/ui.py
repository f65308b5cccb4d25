"""The app's Blocks: a Screen tab (the model reasons over an original and four candidates) and
an Annotate tab (queues of the annotation store, keyboard-driven labelling).

    from app.ui import build_demo, launch_kwargs
    demo = build_demo(screener, store, index)
    demo.launch(server_name="127.0.0.1", **launch_kwargs())

Every event has an ``api_name`` (``/screen``, ``/load_sample``, ``/load_queue``, ``/annotate``,
``/undo``, ``/move``, ``/ask_model``, ``/import_hard_cases``, ``/stats``) so `gradio_client` drives
the same code paths as the browser. Handlers live in `app.handlers`; this module only wires
them and turns `UserError` into a `gr.Error` (a message in the UI; the app keeps serving).
Gradio 6 takes custom JavaScript and CSS in ``launch()``, hence `launch_kwargs`.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
import time
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
*unspecified*. Edit the reasoning so it explains your answer, candidate by candidate.

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


def build_demo(
    screener: H.Screener | None,
    store=None,
    index: H.SampleIndex | None = None,
    *,
    annotator: str = "annotator",
    mined: dict[str, str] | None = None,
    prefill_cot: bool = True,
    title: str = "HCM-GRPO screening lab",
):
    """The app. ``screener`` may be None (annotation only); ``store``/``index`` may be None
    (screening only). ``annotator`` names the labeller when the app runs without login."""
    mined = dict(mined or {})
    known_annotators: set[str] = set()
    # Dataset images shown in the app are written here once (see `handlers.image_file`).
    image_dir = Path(tempfile.mkdtemp(prefix="labkit-app-images-"))
    atexit.register(shutil.rmtree, image_dir, ignore_errors=True)

    def files(images) -> list[str]:
        return [H.image_file(im, image_dir) for im in images]

    def ensure_annotator(name: str) -> str:
        if store is not None and name not in known_annotators:
            store.add_annotator(name)  # idempotent; a login's password hash is kept
            known_annotators.add(name)
        return name

    def fail(exc: Exception):
        raise gr.Error(str(exc), duration=None) from exc

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"## {title}" + (f" · model `{screener.name}`" if screener else " · no model loaded"))
        with gr.Tabs():
            # ------------------------------------------------------------------ Screen
            with gr.Tab("Screen", id="screen"):
                with gr.Row():
                    original = gr.Image(label="Original", type="filepath", height=260, elem_id="screen-original",
                                        sources=["upload", "clipboard"])
                    with gr.Column():
                        form = gr.Radio(["cot", "direct"], value="cot", label="Prompt",
                                        info="cot: reasoning then answer; direct: the answer only", elem_id="screen-form")
                        if index is not None:
                            hard = set(store.queue("hard", dataset=index.name)) if store is not None else set()
                            hard_ids = {k.sample_id for k in hard}
                            # Hard cases first; a huge split (exploration) is cut to keep the page light.
                            ids = sorted(index.ids(), key=lambda s: (s not in hard_ids, s))[:MAX_PICK]
                            pick = gr.Dropdown([(f"★ {s}" if s in hard_ids else s, s) for s in ids], value=None,
                                               label="…or pick a dataset sample (★ hard case)", elem_id="screen-pick")
                        run = gr.Button("Screen", variant="primary", elem_id="screen-btn")
                        status = gr.Markdown(elem_id="screen-status")
                cand_images, cand_notes = [], []
                with gr.Row():
                    for letter in LETTERS:
                        with gr.Column(min_width=180):
                            cand_images.append(gr.Image(label=letter, type="filepath", height=200,
                                                        elem_id=f"screen-{letter}", sources=["upload", "clipboard"]))
                            cand_notes.append(gr.Markdown(f"### {letter}", elem_id=f"verdict-{letter}",
                                                          elem_classes=["verdict"]))
                with gr.Row():
                    reasoning = gr.Textbox(label="Reasoning (streams as the model writes)", lines=8, max_lines=20,
                                           interactive=False, elem_id="reasoning", scale=3)
                    answer = gr.Textbox(label="Parsed answer", interactive=False, elem_id="answer", scale=1)

                def screen(orig, a, b, c, d, prompt_form):
                    if screener is None:
                        fail(H.UserError("no model is loaded: start the app with --model"))
                    try:
                        images = H.collect_images(orig, a, b, c, d)
                        for step in H.throttle(H.screen_stream(screener, images, prompt_form or "cot"), UI_INTERVAL):
                            yield (step.reasoning, step.answer_text(), *[step.per_candidate[l] for l in LETTERS],
                                   step.status)
                    except (H.UserError, RuntimeError) as exc:
                        fail(exc)

                # preprocess=False: the handler gets Gradio's upload record and reads the file
                # itself, so a corrupt, non-image or huge upload gets a message naming it.
                run.click(screen, [original, *cand_images, form], [reasoning, answer, *cand_notes, status],
                          api_name="screen", preprocess=False, concurrency_id="model", concurrency_limit=1)

                if index is not None:
                    def load_sample(sample_id):
                        if not sample_id:
                            fail(H.UserError("pick a sample first"))
                        try:
                            images = index.images(sample_id)
                        except (H.UserError, ValueError) as exc:
                            fail(exc)
                        label = index.get(sample_id).get("answer")
                        note = f"Loaded sample `{sample_id}`" + (f" (label: **{label}**)" if label else "")
                        return (*files(images), note)

                    pick.change(load_sample, [pick], [original, *cand_images, status], api_name="load_sample")

            # ------------------------------------------------------------------ Annotate
            if store is not None and index is not None:
                with gr.Tab("Annotate", id="annotate"):
                    with gr.Column(elem_id="annotate-panel"):
                        state = gr.State({"queue": None, "keys": [], "index": 0, "t0": None})
                        counts = store.progress(index.name)
                        with gr.Row():
                            queue = gr.Radio(list(_queues()), value="hard" if counts.get("hard") else "unlabelled",
                                             label="Queue", elem_id="queue", scale=3)
                            load = gr.Button("Load queue", elem_id="load-btn", scale=1)
                            key = gr.Textbox(label="Sample", interactive=False, elem_id="item-key", scale=2)
                            position = gr.Markdown(elem_id="item-position")
                        with gr.Row():
                            img_original = gr.Image(label="Original", interactive=False, height=340,
                                                    buttons=["fullscreen"], elem_classes=["zoomable"],
                                                    elem_id="ann-original")
                            with gr.Column():
                                accepted = gr.CheckboxGroup(H.CHOICES, label="Acceptable (A-D) or N for none",
                                                            elem_id="accept-box")
                                flag = gr.Checkbox(label="Flag for review (F)", elem_id="flag-box")
                                with gr.Row():
                                    prev_btn = gr.Button("← Prev", elem_id="prev-btn", size="sm")
                                    save_btn = gr.Button("Save ⏎", variant="primary", elem_id="save-btn", size="sm")
                                    undo_btn = gr.Button("Undo (U)", elem_id="undo-btn", size="sm")
                                    next_btn = gr.Button("Next →", elem_id="next-btn", size="sm")
                                ann_status = gr.Markdown(elem_id="annotate-status")
                        img_cands, tags = [], []
                        with gr.Row():
                            for letter in LETTERS:
                                with gr.Column(min_width=180):
                                    img_cands.append(gr.Image(label=letter, interactive=False, height=280,
                                                              buttons=["fullscreen"], elem_classes=["zoomable"],
                                                              elem_id=f"ann-{letter}"))
                                    tags.append(gr.Dropdown(list(H.DEFECT_TAGS), multiselect=True, value=[],
                                                            label=f"{letter}: defects if rejected",
                                                            elem_id=f"tags-{letter}"))
                        with gr.Row():
                            cot = gr.Textbox(label="Reasoning (editable; prefilled by the model)", lines=6,
                                             max_lines=16, elem_id="cot-box", scale=4)
                            with gr.Column(scale=1):
                                ask_btn = gr.Button("Ask the model", elem_id="ask-btn")
                                cot_source = gr.Markdown(elem_id="cot-source")
                        with gr.Accordion("Guidelines", open=False):
                            gr.Markdown(GUIDELINES)
                        with gr.Row():
                            progress_plot = gr.Plot(label="Progress", elem_id="progress-plot")
                            agreement_plot = gr.Plot(label="Agreement", elem_id="agreement-plot")
                        with gr.Accordion("Import hard cases (HCM mining output)", open=False):
                            hard_file = gr.File(label="hard_cases.jsonl from `labkit mine-hard`",
                                                file_types=[".jsonl", ".json", ".txt"], elem_id="hard-file")
                            import_btn = gr.Button("Import as the hard queue", elem_id="import-btn")
                            import_status = gr.Markdown(
                                "Labels feed the next training run through the store's export: "
                                f"`labkit store export --dataset {index.name} --out data/{index.name}-labelled`.")

                    item_outputs = [state, key, position, img_original, *img_cands, accepted, *tags, cot, cot_source,
                                    flag, ann_status]

                    def show(st: dict, status_text: str, name: str):
                        keys = st.get("keys") or []
                        if not keys:
                            st = {**st, "t0": None}
                            return (st, "", f"queue **{st.get('queue')}**: empty", None, None, None, None, None, [],
                                    *[[] for _ in LETTERS], "", "", False, status_text)
                        i = max(0, min(st["index"], len(keys) - 1))
                        try:
                            view = H.item_view(store, index, name, keys[i], position=f"{i + 1} / {len(keys)}",
                                               mined=mined, dataset_cot=screener is None or not prefill_cot)
                        except H.UserError as exc:
                            fail(exc)
                        st = {**st, "index": i, "t0": time.time()}
                        source = f"prefilled from: {view.cot_source}" if view.cot_source else ""
                        where = f"queue **{st['queue']}**: item {view.position}"
                        if view.others:
                            where += f" · {view.others_text()}"
                        return (st, view.key, where, *files(view.images),
                                view.accepted, *view.tags, view.cot, source, view.flag, status_text)

                    def load_queue(queue_name, st, request: gr.Request):
                        name = ensure_annotator(_annotator(request, annotator))
                        try:
                            keys = [f"{k.dataset}/{k.sample_id}" for k in
                                    store.queue(queue_name, dataset=index.name,
                                                annotator=name if queue_name in ("unlabelled", "hard") else None)]
                        except ValueError as exc:
                            fail(exc)
                        st = {"queue": queue_name, "keys": keys, "index": 0, "t0": None}
                        return show(st, f"{len(keys)} item(s) in **{queue_name}** for **{name}**", name)

                    def move(delta, st, request: gr.Request):
                        name = _annotator(request, annotator)
                        delta = int(delta or 0)
                        st = {**st, "index": st.get("index", 0) + delta}
                        return show(st, "", name)

                    def stats():
                        return (H.progress_figure(store.progress(index.name), f"Progress · {index.name}"),
                                H.agreement_figure(store.agreement(index.name)))

                    def annotate(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st,
                                 request: gr.Request):
                        name = ensure_annotator(_annotator(request, annotator))
                        seconds = (time.time() - st["t0"]) if st.get("t0") else None
                        try:
                            event_id = H.save_label(store, name, item_key, choice, [tag_a, tag_b, tag_c, tag_d],
                                                    cot_text, bool(flagged), seconds)
                        except H.UserError as exc:
                            fail(exc)
                        saved = f"Saved `{item_key}` as **{_describe(choice, flagged)}** by **{name}** (event {event_id})."
                        keys = st.get("keys") or []
                        if item_key in keys:
                            st = {**st, "index": keys.index(item_key) + 1}
                            if st["index"] >= len(keys):
                                st["index"] = len(keys) - 1
                                saved += " End of the queue."
                        else:
                            st = {**st, "keys": keys + [item_key], "index": len(keys)}
                        return (*show(st, saved, name), *stats())

                    def undo(st, request: gr.Request):
                        name = ensure_annotator(_annotator(request, annotator))
                        item_key = H.undo_label(store, name)
                        if item_key is None:
                            return (*show(st, f"Nothing to undo for **{name}**.", name), *stats())
                        keys = list(st.get("keys") or [])
                        if item_key not in keys:
                            keys.insert(min(st.get("index", 0), len(keys)), item_key)
                        st = {**st, "keys": keys, "index": keys.index(item_key)}
                        return (*show(st, f"Undid your last label on `{item_key}`.", name), *stats())

                    def ask_model(item_key):
                        if screener is None:
                            fail(H.UserError("no model is loaded: start the app with --model"))
                        try:
                            dataset, sample_id = H.parse_key(item_key)
                            images = index.images(sample_id)
                            for step in H.throttle(H.screen_stream(screener, images, "cot"), UI_INTERVAL):
                                yield step.reasoning, "prefilled from: model" + ("" if step.done else " (writing…)")
                        except (H.UserError, RuntimeError) as exc:
                            fail(exc)

                    def prefill(item_key, cot_text):
                        # Only for an item without reasoning yet; never overwrite what is there.
                        if not item_key or cot_text or screener is None or not prefill_cot:
                            yield gr.skip(), gr.skip()
                            return
                        yield from ask_model(item_key)

                    def import_hard(upload):
                        path = H.upload_path(upload)
                        if not path:
                            fail(H.UserError("upload a hard_cases.jsonl first"))
                        try:
                            added = store.import_hard_cases(path, index.name, source="app upload")
                            mined.update(H.read_mined_responses(path))
                        except (ValueError, FileNotFoundError) as exc:
                            fail(exc)
                        return f"Marked {added} new hard case(s); {len(store.queue('hard', dataset=index.name))} in the hard queue."

                    loaded = load.click(load_queue, [queue, state], item_outputs, api_name="load_queue")
                    loaded.then(prefill, [key, cot], [cot, cot_source], api_name=False,
                                concurrency_id="model", concurrency_limit=1)
                    queue.change(load_queue, [queue, state], item_outputs, api_name=False).then(
                        prefill, [key, cot], [cot, cot_source], api_name=False, concurrency_id="model",
                        concurrency_limit=1)
                    step_back, step_on = gr.Number(-1, visible=False), gr.Number(1, visible=False)
                    prev_btn.click(move, [step_back, state], item_outputs, api_name=False).then(
                        prefill, [key, cot], [cot, cot_source], api_name=False, concurrency_id="model",
                        concurrency_limit=1)
                    next_btn.click(move, [step_on, state], item_outputs, api_name="move").then(
                        prefill, [key, cot], [cot, cot_source], api_name=False, concurrency_id="model",
                        concurrency_limit=1)
                    save_btn.click(annotate, [key, accepted, *tags, cot, flag, state],
                                   [*item_outputs, progress_plot, agreement_plot], api_name="annotate").then(
                        prefill, [key, cot], [cot, cot_source], api_name=False, concurrency_id="model",
                        concurrency_limit=1)
                    undo_btn.click(undo, [state], [*item_outputs, progress_plot, agreement_plot], api_name="undo")
                    ask_btn.click(ask_model, [key], [cot, cot_source], api_name="ask_model",
                                  concurrency_id="model", concurrency_limit=1)
                    import_btn.click(import_hard, [hard_file], [import_status], api_name="import_hard_cases")
                    demo.load(stats, None, [progress_plot, agreement_plot], api_name="stats")
                    # Open on the first item of the default queue, so the keyboard works at once.
                    demo.load(load_queue, [queue, state], item_outputs, api_name=False).then(
                        prefill, [key, cot], [cot, cot_source], api_name=False, concurrency_id="model",
                        concurrency_limit=1)
    return demo


def _queues():
    from labkit.store import QUEUES

    return QUEUES


def _describe(choice, flagged) -> str:
    letters = "".join(sorted(c for c in (choice or []) if c in LETTERS))
    text = letters or ("N" if choice and H.NONE_CHOICE in choice else "no answer")
    return text + (" (flagged)" if flagged else "")
