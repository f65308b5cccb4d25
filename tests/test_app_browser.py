"""End to end in a real headless Chromium (Debian's `chromium`, driven by Playwright through its
executable path): upload five images and watch the reasoning stream, then label a hard-case
queue with the keyboard alone; a save while the model's suggestion streams stores no partial
text; validation errors show inline; the title names the demo arm and warns. Screenshots go
to ``test-artifacts/``.

Skipped only when /usr/bin/chromium is absent (`make test` installs it: `make chromium`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_sample

CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# Headless Debian chromium as root, offline: no sandbox, no GPU, nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (install it: make chromium)"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, tiny_internvl):
    from labkit.app.main import AppConfig, serve
    from labkit.data import save_split

    root = tmp_path_factory.mktemp("browser")
    answers = ["AC", "B", "N", "ABCD", "A", "BD"]
    save_split([make_sample(i, a) for i, a in enumerate(answers)], root / "ds", "train")
    rows = [{"id": f"s{i:04d}", "response": f"<think>Mined reasoning {i}.</think><answer>B</answer>",
             "prediction": "B", "answer": a, "hard": i % 2 == 0} for i, a in enumerate(answers)]
    (root / "hard_cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = {"arm": "hcm-grpo", "score": 42.5, "random": 20.0,
            "warning": "this model answers N on 70 of 100 test samples (70%)"}
    cfg = AppConfig(model=str(tiny_internvl), store=str(root / "store.sqlite"), data=str(root / "ds"),
                    hard_cases=str(root / "hard_cases.jsonl"), port=0, max_new_tokens=160, model_info=info)
    demo = serve(cfg, block=False)
    yield {"url": demo.local_url, "root": root, "store": root / "store.sqlite"}
    demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(app_url["url"])
        pg.wait_for_selector("#screen-btn", timeout=30_000)
        yield pg
        browser.close()


def _value(page, elem_id):
    return page.input_value(f"#{elem_id} textarea, #{elem_id} input")


def _checked(page):
    return page.eval_on_selector_all(
        "#accept-box label", "ls => ls.filter(l => l.querySelector('input').checked).map(l => l.textContent.trim())")


def test_upload_five_images_and_watch_the_reasoning_stream(page, app_url):
    root = app_url["root"]
    for i, (eid, color) in enumerate(zip(["original", "A", "B", "C", "D"], ["white", "red", "blue", "green", "gray"])):
        Image.new("RGB", (64, 64), color).save(root / f"up{i}.png")
        page.set_input_files(f"#screen-{eid} input[type=file]", str(root / f"up{i}.png"))
    page.wait_for_function("document.querySelectorAll('[id^=screen-] img').length >= 5", timeout=20_000)
    # Record the reasoning box's length every few milliseconds while the model writes.
    page.evaluate("""() => { window.__lens = []; window.__rec = setInterval(() => {
        const t = document.querySelector('#reasoning textarea'); if (t) window.__lens.push(t.value.length); }, 5); }""")
    page.click("#screen-btn")
    page.wait_for_function("document.querySelector('#screen-status').innerText.includes('Done in')", timeout=60_000)
    lengths = page.evaluate("() => { clearInterval(window.__rec); return window.__lens; }")
    final = len(_value(page, "reasoning"))
    distinct = sorted(set(lengths))
    # The text grew in steps: intermediate lengths between empty and final were on screen.
    assert any(0 < n < final for n in distinct), distinct
    assert lengths == sorted(lengths)
    answer = _value(page, "answer")
    assert answer and (answer == "(no valid answer)" or set(answer) <= set("ABCDN"))
    for letter in "ABCD":
        assert page.inner_text(f"#verdict-{letter}").startswith(f"{letter}:")
        # A CSS badge, not an emoji.
        assert page.eval_on_selector(f"#verdict-{letter}", "e => e.querySelectorAll('.badge').length") >= 1
    # The rendered reasoning shows no raw tags.
    assert "<think>" not in page.inner_text("#reasoning-view")
    # The title names the arm and its test score, and the warning is on screen.
    assert "model hcm-grpo · test score 42.5 (random guess 20.0)" in page.inner_text("#app-title")
    assert "70 of 100" in page.inner_text("#model-warning")
    page.screenshot(path=str(ARTIFACTS / "app_screen.png"), full_page=True)


def test_picked_sample_shows_its_true_label_and_the_verdict(page, app_url):
    page.click("#screen-pick input")
    page.click("li[role=option]:has-text('s0001')")
    page.wait_for_function("document.querySelector('#screen-status').innerText.includes('true label: B')",
                           timeout=30_000)
    # The display copy is upscaled (32 px samples shown at 384 px); the model still gets the originals.
    page.wait_for_function("(document.querySelector('#screen-original img') || {}).naturalWidth >= 384",
                           timeout=30_000)
    page.click("#screen-btn")
    page.wait_for_function("document.querySelector('#screen-status').innerText.includes('Done in')", timeout=60_000)
    status = page.inner_text("#screen-status")
    assert "True label: B" in status and ("model right" in status or "model wrong" in status)


def test_label_a_hard_case_queue_with_the_keyboard(page, app_url):
    from labkit.store import AnnotationStore

    page.click("button[role=tab]:has-text('Annotate')")
    page.wait_for_function("document.querySelector('#item-key input, #item-key textarea').value.endsWith('s0000')",
                           timeout=30_000)
    # The hard queue opens first; the mined response is a suggestion beside an empty reasoning box.
    assert _value(page, "suggestion-box") == "<think>Mined reasoning 0.</think><answer>B</answer>"
    assert _value(page, "cot-box") == ""
    # Enter with nothing chosen: the message shows inline; the images and the item stay.
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#annotate-status').innerText.includes('nothing chosen')",
                           timeout=30_000)
    assert _value(page, "item-key").endswith("s0000")
    assert page.eval_on_selector_all("#annotate-panel img", "els => els.length") >= 5
    page.keyboard.press("a")
    page.keyboard.press("c")
    assert _checked(page) == ["A", "C"]
    page.keyboard.press("n")  # none: clears A-D
    assert _checked(page) == ["N"]
    page.keyboard.press("b")  # a letter clears N
    assert _checked(page) == ["B"]
    page.keyboard.press("f")
    assert page.is_checked("#flag-box input")
    page.keyboard.press("f")
    assert not page.is_checked("#flag-box input")
    # Typing in the CoT box does not trigger shortcuts; Escape leaves it.
    page.click("#cot-box textarea")
    page.keyboard.press("End")
    page.keyboard.type(" d")
    assert _checked(page) == ["B"]
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # save and move on
    page.wait_for_function("document.querySelector('#item-key input, #item-key textarea').value.endsWith('s0002')",
                           timeout=30_000)
    assert "Saved ds/s0000 as B by annotator" in page.inner_text("#annotate-status")
    # Back with the left arrow: the saved label is shown again.
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.querySelector('#item-key input, #item-key textarea').value.endsWith('s0000')",
                           timeout=30_000)
    page.wait_for_function("document.querySelector('#accept-box input[name=B]').checked", timeout=10_000)
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#item-key input, #item-key textarea').value.endsWith('s0002')",
                           timeout=30_000)
    page.keyboard.press("d")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#item-key input, #item-key textarea').value.endsWith('s0004')",
                           timeout=30_000)
    # U undoes the last label (s0002) and goes back to it.
    page.keyboard.press("u")
    page.wait_for_function("document.querySelector('#annotate-status').innerText.includes('Undid')", timeout=30_000)
    assert _value(page, "item-key").endswith("s0002")
    page.screenshot(path=str(ARTIFACTS / "app_annotate.png"), full_page=True)

    store = AnnotationStore(app_url["store"])
    events = [(e.kind, e.sample_id, e.answer) for e in store.events()]
    assert events == [("label", "s0000", "B"), ("label", "s0002", "D"), ("undo", "s0002", None)]
    (label,) = store.events(sample_id="s0000")
    assert label.cot == " d" and label.cot_source == "human" and label.annotator == "annotator" and label.seconds > 0
    current = store.current_labels(dataset="ds")
    assert {k.sample_id: {a: e.answer for a, e in v.items()} for k, v in current.items()} == {"s0000": {"annotator": "B"}}
    assert (ARTIFACTS / "app_annotate.png").stat().st_size > 10_000


def test_enter_while_the_suggestion_streams_saves_no_partial_text(page, app_url):
    # Ask the model about an unlabelled item: its suggestion streams into its own box. Pressing a
    # letter and Enter while it streams saves the label with no reasoning at all: the stream never
    # touches the annotator's box, and the save stops it.
    from labkit.store import AnnotationStore

    page.click("button[role=tab]:has-text('Annotate')")  # every test starts on a fresh page (Screen tab)
    page.wait_for_selector("#queue", timeout=30_000)
    page.click("#queue label:has-text('unlabelled')")
    page.wait_for_function("document.querySelector('#item-position').innerText.includes('unlabelled')",
                           timeout=30_000)
    page.click("#ask-btn")
    page.wait_for_function("document.querySelector('#suggestion-source').innerText.includes('writing')",
                           timeout=60_000)
    key = _value(page, "item-key")
    partial = _value(page, "suggestion-box")
    assert _value(page, "cot-box") == ""
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#annotate-status').innerText.includes('Saved {key}')",
                           timeout=30_000)
    store = AnnotationStore(app_url["store"])
    last = store.events(sample_id=key.split("/")[1])[-1]
    assert (last.answer, last.cot, last.cot_source) == ("C", "", "none")
    assert partial == "" or partial not in last.cot
