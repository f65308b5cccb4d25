"""The Annotate tab of the app (wired by `labkit.app.ui.build_demo`): queues of the annotation store and
keyboard-driven labelling that stays blind and keeps the annotator's reasoning their own.

- Blind: other annotators' answers show only in the ``flagged`` and ``disagreements`` queues,
  which belong to reviewers and admins when login is on (`labkit.app.handlers.REVIEW_ROLES`); showing
  them is recorded (`AnnotationStore.record_reveal`) so agreement uses blind labels only.
- Reasoning: the model's suggestion streams into its own read-only box; the annotator's box is
  never written by the model. "Use suggestion" copies a *finished* suggestion into an empty
  reasoning box; a save, a move or "Stop" cancels a running stream. The store records whether
  the saved reasoning was typed (human), accepted unedited (model) or absent (none), and refuses
  reasoning that contradicts the label ("Save without reasoning" drops it).
- Admin only (with login): importing hard cases and removing a hard mark.

In three parts: `build_layout` (the components, as an `AnnotateTab`), `AnnotateHandlers` (what
each event does, no wiring) and `wire_events` (which event calls what, with which outputs and
which running streams it cancels); `build_annotate_tab` runs the three.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr  # the UI modules need it; `labkit.app.main` imports them only when it serves

from labkit.app import handlers as H
from labkit.app.ui_common import GUIDELINES, annotator_of, inline_error
from labkit.metrics import LETTERS
from labkit.store import MAX_COT_CHARS, QUEUES

REVIEW_QUEUES = ("flagged", "disagreements")


@dataclass
class AnnotateTab:
    """The Annotate tab's components (`build_layout`)."""

    state: gr.State
    step_back: gr.Number
    step_on: gr.Number
    queue: gr.Radio
    load: gr.Button
    key: gr.Textbox
    position: gr.Markdown
    img_original: gr.Image
    accepted: gr.CheckboxGroup
    flag: gr.Checkbox
    prev_btn: gr.Button
    save_btn: gr.Button
    undo_btn: gr.Button
    next_btn: gr.Button
    save_bare_btn: gr.Button
    ann_status: gr.Markdown
    img_cands: list
    tags: list
    cot: gr.Textbox
    suggestion: gr.Textbox
    ask_btn: gr.Button
    stop_btn: gr.Button
    use_btn: gr.Button
    suggestion_source: gr.Markdown
    progress_plot: gr.Plot
    agreement_plot: gr.Plot
    hard_file: gr.File
    import_btn: gr.Button
    unmark_btn: gr.Button
    import_status: gr.Markdown

    @property
    def item_outputs(self) -> list:
        """What showing one queue item writes (the status line last)."""
        return [self.state, self.key, self.position, self.img_original, *self.img_cands, self.accepted, *self.tags,
                self.cot, self.suggestion, self.suggestion_source, self.flag, self.ann_status]

    @property
    def with_plots(self) -> list:
        """`item_outputs` and the two figures (what a save or an undo writes)."""
        return [*self.item_outputs, self.progress_plot, self.agreement_plot]


def build_layout(store, index) -> AnnotateTab:
    """The Annotate tab's components (inside the Blocks' Tabs context); no events."""
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
    return AnnotateTab(
        state, step_back, step_on, queue, load, key, position, img_original, accepted, flag, prev_btn, save_btn,
        undo_btn, next_btn, save_bare_btn, ann_status, img_cands, tags, cot, suggestion, ask_btn, stop_btn, use_btn,
        suggestion_source, progress_plot, agreement_plot, hard_file, import_btn, unmark_btn, import_status)


class AnnotateHandlers:
    """What the Annotate tab's events do (wired by `wire_events`). ``finished`` holds each
    annotator's finished model suggestion per item, ``streaming`` the items whose suggestion
    the model is still writing."""

    def __init__(self, tab: AnnotateTab, screener, store, index, *, annotator, mined, prefill_cot, files, role_of,
                 login, interval):
        self.screener, self.store, self.index, self.annotator, self.mined = screener, store, index, annotator, mined
        self.prefill_cot, self.files, self.role_of, self.login, self.interval = (
            prefill_cot, files, role_of, login, interval)
        self.n_items, self.n_all = len(tab.item_outputs), len(tab.with_plots)
        self.known_annotators: set[str] = set()
        self.finished: dict[tuple[str, str], str] = {}  # (annotator, key) -> a finished suggestion
        self.streaming: set[tuple[str, str]] = set()  # (annotator, key) while the model writes a suggestion

    def ensure_annotator(self, name: str) -> str:
        if name not in self.known_annotators:
            self.store.add_annotator(name)  # idempotent; a login's password hash is kept
            self.known_annotators.add(name)
        return name

    def skip_all_but_status(self, msg, n: int | None = None):
        # A validation error: only the status line changes; images, choices and text stay.
        out = [gr.skip()] * (self.n_all if n is None else n)
        out[self.n_items - 1] = inline_error(msg)
        return tuple(out)

    def show(self, st: dict, status_text: str, name: str, role: str):
        keys = st.get("keys") or []
        if not keys:
            st = {**st, "t0": None}
            return (st, "", f"queue **{st.get('queue')}**: empty", None, None, None, None, None, [],
                    *[[] for _ in LETTERS], "", "", "", False, status_text)
        i = max(0, min(st["index"], len(keys) - 1))
        show_others = st.get("queue") in REVIEW_QUEUES and role in H.REVIEW_ROLES
        try:
            view = H.item_view(self.store, self.index, name, keys[i], position=f"{i + 1} / {len(keys)}",
                               mined=self.mined, dataset_cot=self.screener is None or not self.prefill_cot,
                               show_others=show_others)
        except H.UserError as exc:
            raise gr.Error(H.client_message(str(exc))) from exc
        st = {**st, "index": i, "t0": time.time()}
        text = view.suggestion or self.finished.get((name, view.key), "")
        if view.suggestion:
            self.finished[(name, view.key)] = view.suggestion
        source = f"suggestion from: {view.suggestion_source or 'model'}" if text else ""
        where = f"queue **{st['queue']}**: item {view.position}"
        if view.others:
            where += f" · {view.others_text()}"
        return (st, view.key, where, *self.files(view.images), view.accepted, *view.tags, view.cot, text, source,
                view.flag, status_text)

    def load_queue(self, queue_name, st, request: gr.Request):
        name, role = self.ensure_annotator(annotator_of(request, self.annotator)), self.role_of(request)
        if queue_name in REVIEW_QUEUES and self.login and role not in H.REVIEW_ROLES:
            return self.skip_all_but_status(f"the {queue_name} queue is for reviewers (your role: {role})",
                                            self.n_items)
        try:
            keys = [f"{k.dataset}/{k.sample_id}" for k in
                    self.store.queue(queue_name, dataset=self.index.name,
                                     annotator=name if queue_name in ("unlabelled", "hard") else None)]
        except ValueError as exc:
            return self.skip_all_but_status(exc, self.n_items)
        st = {"queue": queue_name, "keys": keys, "index": 0, "t0": None}
        return self.show(st, f"{len(keys)} item(s) in **{queue_name}** for **{name}**", name, role)

    def move(self, delta, st, request: gr.Request):
        st = {**st, "index": st.get("index", 0) + int(delta or 0)}
        return self.show(st, "", annotator_of(request, self.annotator), self.role_of(request))

    def stats(self):
        return (H.progress_figure(self.store.progress(self.index.name), f"Progress · {self.index.name}"),
                H.agreement_figure(self.store.agreement(self.index.name), "Agreement (blind labels)"))

    def save(self, item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, drop_reasoning):
        name = self.ensure_annotator(annotator_of(request, self.annotator))
        seconds = (time.time() - st["t0"]) if st.get("t0") else None
        text = "" if drop_reasoning else (cot_text or "")
        try:
            event_id = H.save_label(self.store, name, item_key, choice, [tag_a, tag_b, tag_c, tag_d], text,
                                    bool(flagged), seconds, suggestion=self.finished.get((name, item_key)))
        except H.UserError as exc:
            return self.skip_all_but_status(exc)
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
        return (*self.show(st, saved, name, self.role_of(request)), *self.stats())

    def annotate(self, item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request: gr.Request):
        return self.save(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, False)

    def annotate_bare(self, item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request: gr.Request):
        return self.save(item_key, choice, tag_a, tag_b, tag_c, tag_d, cot_text, flagged, st, request, True)

    def undo(self, st, request: gr.Request):
        name = self.ensure_annotator(annotator_of(request, self.annotator))
        item_key = H.undo_label(self.store, name)
        if item_key is None:
            return (*self.show(st, f"Nothing to undo for **{name}**.", name, self.role_of(request)), *self.stats())
        keys = list(st.get("keys") or [])
        if item_key not in keys:
            keys.insert(min(st.get("index", 0), len(keys)), item_key)
        st = {**st, "keys": keys, "index": keys.index(item_key)}
        return (*self.show(st, f"Undid your last label on `{item_key}`.", name, self.role_of(request)), *self.stats())

    def ask_model(self, item_key, request: gr.Request):
        if self.screener is None:
            yield gr.skip(), inline_error("no model is loaded: start the app with --model")
            return
        name = annotator_of(request, self.annotator)
        try:
            _, sample_id = H.parse_key(item_key)
            images = self.index.images(sample_id)
        except H.UserError as exc:
            yield gr.skip(), inline_error(exc)
            return
        self.streaming.add((name, item_key))
        self.finished.pop((name, item_key), None)
        try:
            for step in H.throttle(H.screen_stream(self.screener, images, "cot"), self.interval):
                if step.done:
                    self.finished[(name, item_key)] = step.reasoning
                yield step.reasoning, "suggestion from: model" + ("" if step.done else " (writing...)")
        except RuntimeError as exc:
            raise gr.Error(H.client_message(str(exc))) from exc
        finally:  # also when a save, a move or Stop cancels the stream
            self.streaming.discard((name, item_key))

    def prefill(self, item_key, suggestion_text, request: gr.Request):
        # Only for an item without a suggestion yet; writes the suggestion box, never the reasoning.
        if not item_key or suggestion_text or self.screener is None or not self.prefill_cot:
            yield gr.skip(), gr.skip()
            return
        yield from self.ask_model(item_key, request)

    def use_suggestion(self, item_key, cot_text, request: gr.Request):
        name = annotator_of(request, self.annotator)
        if (name, item_key) in self.streaming:
            return gr.skip(), inline_error("the model is still writing: wait for it to finish or press Stop")
        text = self.finished.get((name, item_key))
        if not text:
            return gr.skip(), inline_error("no finished suggestion for this item: press 'Ask the model'")
        if (cot_text or "").strip() and cot_text.strip() != text.strip():
            return gr.skip(), inline_error("your reasoning box is not empty: clear it to use the suggestion")
        return text, "using the model's suggestion (saved as model reasoning unless you edit it)"

    def import_hard(self, upload, request: gr.Request):
        role = self.role_of(request)
        if role not in H.ADMIN_ROLES:
            return inline_error(f"importing hard cases is for admins (your role: {role}); or use "
                                "`labkit store import-hard`")
        path = H.upload_path(upload)
        if not path:
            return inline_error("upload a hard_cases.jsonl first")
        try:
            added = self.store.import_hard_cases(path, self.index.name, source="app upload")
            self.mined.update(H.read_mined_responses(path))
        except (ValueError, FileNotFoundError) as exc:
            return inline_error(exc)
        in_queue = len(self.store.queue("hard", dataset=self.index.name))
        return f"Marked {added} new hard case(s); {in_queue} in the hard queue."

    def unmark_hard(self, item_key, request: gr.Request):
        role = self.role_of(request)
        if role not in H.ADMIN_ROLES:
            return inline_error(f"removing a hard mark is for admins (your role: {role}); or use "
                                "`labkit store unmark-hard`")
        try:
            dataset, sample_id = H.parse_key(item_key)
        except H.UserError as exc:
            return inline_error(exc)
        n = self.store.unmark_hard(dataset, [sample_id])
        return f"Removed the hard mark of `{item_key}`." if n else f"`{item_key}` was not marked hard."


def wire_events(demo, t: AnnotateTab, h: AnnotateHandlers) -> None:
    """Connect the tab's components to the handlers. Every event that shows a new item is
    followed by the model's suggestion for it (`then_prefill`); a move, a save or an undo
    cancels a suggestion still streaming (it belongs to the item left behind)."""
    model = {"concurrency_id": "model", "concurrency_limit": 1}  # one generation at a time
    prefills = []

    def then_prefill(event):
        prefills.append(event.then(h.prefill, [t.key, t.suggestion], [t.suggestion, t.suggestion_source],
                                   api_name=False, **model))
        return event

    asked = t.ask_btn.click(h.ask_model, [t.key], [t.suggestion, t.suggestion_source], api_name="ask_model", **model)
    then_prefill(t.load.click(h.load_queue, [t.queue, t.state], t.item_outputs, api_name="load_queue"))
    then_prefill(t.queue.change(h.load_queue, [t.queue, t.state], t.item_outputs, api_name=False))
    # Open on the first item of the default queue, so the keyboard works at once.
    then_prefill(demo.load(h.load_queue, [t.queue, t.state], t.item_outputs, api_name=False))
    streams = [asked, *prefills]  # what a move, a save or an undo cancels
    then_prefill(t.prev_btn.click(h.move, [t.step_back, t.state], t.item_outputs, api_name=False,
                                  cancels=list(streams)))
    then_prefill(t.next_btn.click(h.move, [t.step_on, t.state], t.item_outputs, api_name="move",
                                  cancels=list(streams)))
    save_inputs = [t.key, t.accepted, *t.tags, t.cot, t.flag, t.state]
    then_prefill(t.save_btn.click(h.annotate, save_inputs, t.with_plots, api_name="annotate", cancels=list(streams)))
    then_prefill(t.save_bare_btn.click(h.annotate_bare, save_inputs, t.with_plots,
                                       api_name="annotate_without_reasoning", cancels=list(streams)))
    t.undo_btn.click(h.undo, [t.state], t.with_plots, api_name="undo", cancels=list(streams))
    t.stop_btn.click(lambda: "stopped", None, [t.suggestion_source], api_name="stop", cancels=[asked, *prefills])
    t.use_btn.click(h.use_suggestion, [t.key, t.cot], [t.cot, t.suggestion_source], api_name="use_suggestion")
    t.import_btn.click(h.import_hard, [t.hard_file], [t.import_status], api_name="import_hard_cases")
    t.unmark_btn.click(h.unmark_hard, [t.key], [t.import_status], api_name="unmark_hard")
    demo.load(h.stats, None, [t.progress_plot, t.agreement_plot], api_name="stats")


def build_annotate_tab(demo, screener, store, index, *, annotator, mined, prefill_cot, files, role_of, login,
                       interval) -> AnnotateHandlers:
    """Add the Annotate tab to ``demo`` (inside its Blocks and Tabs context); returns its handlers."""
    tab = build_layout(store, index)
    handlers = AnnotateHandlers(tab, screener, store, index, annotator=annotator, mined=mined,
                                prefill_cot=prefill_cot, files=files, role_of=role_of, login=login, interval=interval)
    wire_events(demo, tab, handlers)
    return handlers


def _describe(choice, flagged) -> str:
    letters = "".join(sorted(c for c in (choice or []) if c in LETTERS))
    text = letters or ("N" if choice and H.NONE_CHOICE in choice else "no answer")
    return text + (" (flagged)" if flagged else "")
