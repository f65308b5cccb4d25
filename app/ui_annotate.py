"""The Annotate tab of the app (wired by `app.ui.build_demo`): queues of the annotation store and
keyboard-driven labelling that stays blind and keeps the annotator's reasoning their own.

- Blind: other annotators' answers show only in the ``flagged`` and ``disagreements`` queues,
  which belong to reviewers and admins when login is on (`app.handlers.REVIEW_ROLES`); showing
  them is recorded (`AnnotationStore.record_reveal`) so agreement uses blind labels only.
- Reasoning: the model's suggestion streams into its own read-only box; the annotator's box is
  never written by the model. "Use suggestion" copies a *finished* suggestion into an empty
  reasoning box; a save, a move or "Stop" cancels a running stream. The store records whether
  the saved reasoning was typed (human), accepted unedited (model) or absent (none), and refuses
  reasoning that contradicts the label ("Save without reasoning" drops it).
- Admin only (with login): importing hard cases and removing a hard mark.
"""
from __future__ import annotations

import time

import gradio as gr

from app import handlers as H
from labkit.metrics import LETTERS
from labkit.store import MAX_COT_CHARS, QUEUES

REVIEW_QUEUES = ("flagged", "disagreements")


def build_annotate_tab(demo, screener, store, index, *, annotator, mined, prefill_cot, files, role_of, login,
                       interval):
    """Add the Annotate tab to ``demo`` (inside its Blocks and Tabs context)."""
    from app.ui import GUIDELINES, _annotator, inline_error

    known_annotators: set[str] = set()
    finished: dict[tuple[str, str], str] = {}  # (annotator, key) -> a finished suggestion
    streaming: set[tuple[str, str]] = set()  # (annotator, key) while the model writes a suggestion

    def ensure_annotator(name: str) -> str:
        if name not in known_annotators:
            store.add_annotator(name)  # idempotent; a login's password hash is kept
            known_annotators.add(name)
        return name

    with gr.Tab("Annotate", id="annotate"):
        with gr.Column(elem_id="annotate-panel"):
            state = gr.State({"queue": None, "keys": [], "index": 0, "t0": None})
            step_back, step_on = gr.Number(-1, visible=False), gr.Number(1, visible=False)
            counts = store.progress(index.name)
            with gr.Row():
                queue = gr.Radio(list(QUEUES), value="hard" if counts.get("hard") else "unlabelled",
                                 label="Queue", elem_id="queue", scale=3)
                load = gr.Button("Load queue", elem_id="load-btn", scale=1)
                key = gr.Textbox(label="Sample", interactive=False, elem_id="item-key", scale=2)
                position = gr.Markdown(elem_id="item-position")
            with gr.Row():
                img_original = gr.Image(label="Original", interactive=False, height=380, buttons=["fullscreen"],
                                        elem_classes=["zoomable"], elem_id="ann-original")
                with gr.Column():
                    accepted = gr.CheckboxGroup(H.CHOICES, label="Acceptable (A-D) or N for none", elem_id="accept-box")
                    flag = gr.Checkbox(label="Flag for review (F)", elem_id="flag-box")
                    with gr.Row():
                        prev_btn = gr.Button("Prev", elem_id="prev-btn", size="sm")
                        save_btn = gr.Button("Save (Enter)", variant="primary", elem_id="save-btn", size="sm")
                        undo_btn = gr.Button("Undo (U)", elem_id="undo-btn", size="sm")
                        next_btn = gr.Button("Next", elem_id="next-btn", size="sm")
                    save_bare_btn = gr.Button("Save without reasoning", elem_id="save-bare-btn", size="sm")
                    ann_status = gr.Markdown(elem_id="annotate-status")
            img_cands, tags = [], []
            with gr.Row():
                for letter in LETTERS:
                    with gr.Column(min_width=200):
                        img_cands.append(gr.Image(label=letter, interactive=False, height=320, buttons=["fullscreen"],
                                                  elem_classes=["zoomable"], elem_id=f"ann-{letter}"))
                        tags.append(gr.Dropdown(list(H.DEFECT_TAGS), multiselect=True, value=[],
                                                label=f"{letter}: defects if rejected", elem_id=f"tags-{letter}"))
            with gr.Row():
                cot = gr.Textbox(label="Your reasoning (saved with the label; the model never writes here)", lines=6,
                                 max_lines=16, max_length=MAX_COT_CHARS, elem_id="cot-box", scale=3)
                suggestion = gr.Textbox(label="Model suggestion (saved only if you use it)", lines=6, max_lines=16,
                                        interactive=False, elem_id="suggestion-box", scale=3)
                with gr.Column(scale=1):
                    ask_btn = gr.Button("Ask the model", elem_id="ask-btn", size="sm")
                    stop_btn = gr.Button("Stop", elem_id="stop-btn", size="sm")
                    use_btn = gr.Button("Use suggestion", elem_id="use-btn", size="sm")
                    suggestion_source = gr.Markdown(elem_id="suggestion-source")
            with gr.Accordion("Guidelines", open=False):
                gr.Markdown(GUIDELINES)
            with gr.Row():
                progress_plot = gr.Plot(label="Progress", elem_id="progress-plot")
                agreement_plot = gr.Plot(label="Agreement (blind labels)", elem_id="agreement-plot")
            with gr.Accordion("Admin: hard cases (HCM mining output)", open=False):
                hard_file = gr.File(label="hard_cases.jsonl from `labkit mine-hard`",
                                    file_types=[".jsonl", ".json", ".txt"], elem_id="hard-file")
                with gr.Row():
                    import_btn = gr.Button("Import as the hard queue", elem_id="import-btn")
                    unmark_btn = gr.Button("Remove the hard mark of this item", elem_id="unmark-btn")
                import_status = gr.Markdown(
                    "Labels feed the next training run through the store's export: "
                    f"`labkit store export --dataset {index.name} --out data/{index.name}-labelled`.",
                    elem_id="import-status")

    item_outputs = [state, key, position, img_original, *img_cands, accepted, *tags, cot, suggestion,
                    suggestion_source, flag, ann_status]
    with_plots = [*item_outputs, progress_plot, agreement_plot]

    def skip_all_but_status(msg, n=len(with_plots)):
        # A validation error: only the status line changes; images, choices and text stay.
        out = [gr.skip()] * n
        out[len(item_outputs) - 1] = inline_error(msg)
        return tuple(out)

    def show(st: dict, status_text: str, name: str, role: str):
        keys = st.get("keys") or []
        if not keys:
            st = {**st, "t0": None}
            return (st, "", f"queue **{st.get('queue')}**: empty", None, None, None, None, None, [],
                    *[[] for _ in LETTERS], "", "", "", False, status_text)
        i = max(0, min(st["index"], len(keys) - 1))
        show_others = st.get("queue") in REVIEW_QUEUES and role in H.REVIEW_ROLES
        try:
            view = H.item_view(store, index, name, keys[i], position=f"{i + 1} / {len(keys)}", mined=mined,
                               dataset_cot=screener is None or not prefill_cot, show_others=show_others)
        except H.UserError as exc:
            raise gr.Error(H.client_message(str(exc))) from exc
        st = {**st, "index": i, "t0": time.time()}
        text = view.suggestion or finished.get((name, view.key), "")
        if view.suggestion:
            finished[(name, view.key)] = view.suggestion
        source = f"suggestion from: {view.suggestion_source or 'model'}" if text else ""
        where = f"queue **{st['queue']}**: item {view.position}"
        if view.others:
            where += f" · {view.others_text()}"
        return (st, view.key, where, *files(view.images), view.accepted, *view.tags, view.cot, text, source,
                view.flag, status_text)

    def load_queue(queue_name, st, request: gr.Request):
        name, role = ensure_annotator(_annotator(request, annotator)), role_of(request)
        if queue_name in REVIEW_QUEUES and login and role not in H.REVIEW_ROLES:
            return skip_all_but_status(f"the {queue_name} queue is for reviewers (your role: {role})",
                                       len(item_outputs))
        try:
            keys = [f"{k.dataset}/{k.sample_id}" for k in
                    store.queue(queue_name, dataset=index.name,
                                annotator=name if queue_name in ("unlabelled", "hard") else None)]
        except ValueError as exc:
            return skip_all_but_status(exc, len(item_outputs))
        st = {"queue": queue_name, "keys": keys, "index": 0, "t0": None}
        return show(st, f"{len(keys)} item(s) in **{queue_name}** for **{name}**", name, role)

    def move(delta, st, request: gr.Request):
        st = {**st, "index": st.get("index", 0) + int(delta or 0)}
        return show(st, "", _annotator(request, annotator), role_of(request))

    def stats():
        return (H.progress_figure(store.progress(index.name), f"Progress · {index.name}"),
                H.agreement_figure(store.agreement(index.name), "Agreement (blind labels)"))

    def save(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, drop_reasoning):
        name = ensure_annotator(_annotator(request, annotator))
        seconds = (time.time() - st["t0"]) if st.get("t0") else None
        text = "" if drop_reasoning else (cot_text or "")
        try:
            event_id = H.save_label(store, name, item_key, choice, [tag_a, tag_b, tag_c, tag_d], text, bool(flagged),
                                    seconds, suggestion=finished.get((name, item_key)))
        except H.UserError as exc:
            return skip_all_but_status(exc)
        saved = f"Saved `{item_key}` as **{_describe(choice, flagged)}** by **{name}** (event {event_id})."
        if drop_reasoning:
            saved += " Without reasoning."
        keys = st.get("keys") or []
        if item_key in keys:
            st = {**st, "index": keys.index(item_key) + 1}
            if st["index"] >= len(keys):
                st["index"] = len(keys) - 1
                saved += " End of the queue."
        else:
            st = {**st, "keys": keys + [item_key], "index": len(keys)}
        return (*show(st, saved, name, role_of(request)), *stats())

    def annotate(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request: gr.Request):
        return save(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, False)

    def annotate_bare(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request: gr.Request):
        return save(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, True)

    def undo(st, request: gr.Request):
        name = ensure_annotator(_annotator(request, annotator))
        item_key = H.undo_label(store, name)
        if item_key is None:
            return (*show(st, f"Nothing to undo for **{name}**.", name, role_of(request)), *stats())
        keys = list(st.get("keys") or [])
        if item_key not in keys:
            keys.insert(min(st.get("index", 0), len(keys)), item_key)
        st = {**st, "keys": keys, "index": keys.index(item_key)}
        return (*show(st, f"Undid your last label on `{item_key}`.", name, role_of(request)), *stats())

    def ask_model(item_key, request: gr.Request):
        if screener is None:
            yield gr.skip(), inline_error("no model is loaded: start the app with --model")
            return
        name = _annotator(request, annotator)
        try:
            _, sample_id = H.parse_key(item_key)
            images = index.images(sample_id)
        except H.UserError as exc:
            yield gr.skip(), inline_error(exc)
            return
        streaming.add((name, item_key))
        finished.pop((name, item_key), None)
        try:
            for step in H.throttle(H.screen_stream(screener, images, "cot"), interval):
                if step.done:
                    finished[(name, item_key)] = step.reasoning
                yield step.reasoning, "suggestion from: model" + ("" if step.done else " (writing...)")
        except RuntimeError as exc:
            raise gr.Error(H.client_message(str(exc))) from exc
        finally:  # also when a save, a move or Stop cancels the stream
            streaming.discard((name, item_key))

    def prefill(item_key, suggestion_text, request: gr.Request):
        # Only for an item without a suggestion yet; writes the suggestion box, never the reasoning.
        if not item_key or suggestion_text or screener is None or not prefill_cot:
            yield gr.skip(), gr.skip()
            return
        yield from ask_model(item_key, request)

    def use_suggestion(item_key, cot_text, request: gr.Request):
        name = _annotator(request, annotator)
        if (name, item_key) in streaming:
            return gr.skip(), inline_error("the model is still writing: wait for it to finish or press Stop")
        text = finished.get((name, item_key))
        if not text:
            return gr.skip(), inline_error("no finished suggestion for this item: press 'Ask the model'")
        if (cot_text or "").strip() and cot_text.strip() != text.strip():
            return gr.skip(), inline_error("your reasoning box is not empty: clear it to use the suggestion")
        return text, "using the model's suggestion (saved as model reasoning unless you edit it)"

    def import_hard(upload, request: gr.Request):
        role = role_of(request)
        if role not in H.ADMIN_ROLES:
            return inline_error(f"importing hard cases is for admins (your role: {role}); or use "
                                "`labkit store import-hard`")
        path = H.upload_path(upload)
        if not path:
            return inline_error("upload a hard_cases.jsonl first")
        try:
            added = store.import_hard_cases(path, index.name, source="app upload")
            mined.update(H.read_mined_responses(path))
        except (ValueError, FileNotFoundError) as exc:
            return inline_error(exc)
        return f"Marked {added} new hard case(s); {len(store.queue('hard', dataset=index.name))} in the hard queue."

    def unmark_hard(item_key, request: gr.Request):
        role = role_of(request)
        if role not in H.ADMIN_ROLES:
            return inline_error(f"removing a hard mark is for admins (your role: {role}); or use "
                                "`labkit store unmark-hard`")
        try:
            dataset, sample_id = H.parse_key(item_key)
        except H.UserError as exc:
            return inline_error(exc)
        n = store.unmark_hard(dataset, [sample_id])
        return f"Removed the hard mark of `{item_key}`." if n else f"`{item_key}` was not marked hard."

    def then_prefill(event):
        return event.then(prefill, [key, suggestion], [suggestion, suggestion_source], api_name=False,
                          concurrency_id="model", concurrency_limit=1)

    asked = ask_btn.click(ask_model, [key], [suggestion, suggestion_source], api_name="ask_model",
                          concurrency_id="model", concurrency_limit=1)
    prefills = [then_prefill(load.click(load_queue, [queue, state], item_outputs, api_name="load_queue"))]
    prefills.append(then_prefill(queue.change(load_queue, [queue, state], item_outputs, api_name=False)))
    # Open on the first item of the default queue, so the keyboard works at once.
    prefills.append(then_prefill(demo.load(load_queue, [queue, state], item_outputs, api_name=False)))
    # A move or a save stops a suggestion still streaming (it belongs to the item left behind).
    streams = [asked, *prefills]
    prefills.append(then_prefill(prev_btn.click(move, [step_back, state], item_outputs, api_name=False,
                                                cancels=list(streams))))
    prefills.append(then_prefill(next_btn.click(move, [step_on, state], item_outputs, api_name="move",
                                                cancels=list(streams))))
    save_inputs = [key, accepted, *tags, cot, flag, state]
    prefills.append(then_prefill(save_btn.click(annotate, save_inputs, with_plots, api_name="annotate",
                                                cancels=list(streams))))
    prefills.append(then_prefill(save_bare_btn.click(annotate_bare, save_inputs, with_plots,
                                                     api_name="annotate_without_reasoning", cancels=list(streams))))
    undo_btn.click(undo, [state], with_plots, api_name="undo", cancels=list(streams))
    stop_btn.click(lambda: "stopped", None, [suggestion_source], api_name="stop", cancels=[asked, *prefills])
    use_btn.click(use_suggestion, [key, cot], [cot, suggestion_source], api_name="use_suggestion")
    import_btn.click(import_hard, [hard_file], [import_status], api_name="import_hard_cases")
    unmark_btn.click(unmark_hard, [key], [import_status], api_name="unmark_hard")
    demo.load(stats, None, [progress_plot, agreement_plot], api_name="stats")


def _describe(choice, flagged) -> str:
    letters = "".join(sorted(c for c in (choice or []) if c in LETTERS))
    text = letters or ("N" if choice and H.NONE_CHOICE in choice else "no answer")
    return text + (" (flagged)" if flagged else "")
