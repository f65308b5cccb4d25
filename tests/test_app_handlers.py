"""The app's handlers as pure functions (no server): uploads, streaming screening, the
per-candidate split of the reasoning, labels in a real SQLite store, login."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from labkit.app import handlers as H
from conftest import make_sample
from labkit.metrics import parse_answer


def _png(path, color="red", size=32):
    Image.new("RGB", (size, size), color).save(path)
    return str(path)


@pytest.fixture
def five(tmp_path):
    return [_png(tmp_path / f"{i}.png", c) for i, c in enumerate(["white", "red", "blue", "green", "gray"])]


@pytest.fixture
def store_and_index(tmp_path):
    from labkit.data import save_split
    from labkit.store import AnnotationStore

    save_split([make_sample(i, a) for i, a in enumerate(["AC", "B", "N"])], tmp_path / "ds", "train")
    index = H.SampleIndex(tmp_path / "ds")
    store = AnnotationStore(tmp_path / "store.sqlite")
    store.register_split(tmp_path / "ds", "train", dataset=index.name)
    store.add_annotator("ana")
    return store, index


# ----------------------------------------------------------------------------- uploads

def test_collect_images_reads_five_uploads_in_order(five):
    # Paths and Gradio FileData dicts both work; the order is original, A, B, C, D.
    images = H.collect_images(five[0], {"path": five[1]}, five[2], five[3], {"path": five[4], "url": None})
    assert [im.getpixel((0, 0)) for im in images] == [(255, 255, 255), (255, 0, 0), (0, 0, 255), (0, 128, 0), (128, 128, 128)]


def test_fewer_than_five_images_names_the_missing_ones(five):
    # Two missing: the message counts what was given and names what is missing.
    with pytest.raises(H.UserError, match=r"3 of 5 images given; missing: candidate B, candidate D"):
        H.collect_images(five[0], five[1], None, five[3], None)


def test_corrupt_and_non_image_uploads_are_named(tmp_path, five):
    # A text file and a truncated PNG: both named in one message, no traceback, no cache path.
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, format="PNG")
    broken = tmp_path / "broken.png"
    broken.write_bytes(buf.getvalue()[:60])
    with pytest.raises(H.UserError) as err:
        H.collect_images(five[0], str(text), five[2], str(broken), five[4])
    msg = str(err.value)
    assert "candidate A" in msg and "candidate C" in msg and "unreadable" in msg
    assert str(tmp_path) not in msg


def test_huge_image_hits_the_decompression_bomb_limit(tmp_path, monkeypatch):
    # PIL's bomb limit applies to uploads (lowered here so the test image stays small).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _png(tmp_path / "big.png", size=64)  # 4096 px > 2 x 1000: DecompressionBombError
    with pytest.raises(H.UserError, match="original image is too large"):
        H.read_upload(path, "original image")


def test_tiny_image_is_refused(tmp_path):
    with pytest.raises(H.UserError, match=r"candidate B is too small \(4x4"):
        H.read_upload(_png(tmp_path / "t.png", size=4), "candidate B")


def test_image_file_is_named_by_content_and_written_once(tmp_path):
    # Same pixels -> same file (not rewritten); other pixels -> another file; no temp file left.
    a = H.image_file(Image.new("RGB", (16, 16), "red"), tmp_path)
    mtime = os.stat(a).st_mtime_ns
    assert H.image_file(Image.new("RGB", (16, 16), "red"), tmp_path) == a and os.stat(a).st_mtime_ns == mtime
    b = H.image_file(Image.new("RGB", (16, 16), "blue"), tmp_path)
    assert b != a and Image.open(b).getpixel((0, 0)) == (0, 0, 255)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(a).name, Path(b).name])


# ----------------------------------------------------------------------------- reasoning per candidate

def test_split_reasoning_gives_each_candidate_its_part():
    text = ("<think>The original is a red box. Image A: the box is warped. B keeps the product unchanged. "
            "C) floats above the table. D is fine.</think><answer>BD</answer>")
    parts = H.split_reasoning(text)
    assert parts == {
        "A": "Image A: the box is warped.",
        "B": "B keeps the product unchanged.",
        "C": "C) floats above the table.",
        "D": "D is fine.",
    }


def test_split_reasoning_of_an_oracle_style_cot_leaves_out_the_summary():
    # The synthetic oracle's CoT style: an overview naming all letters, per-candidate parts, a summary.
    text = ("<think>The original shows a blister pack. I check A, B, C and D in turn. A: A cup that is not in "
            "the original stands next to it. A fails on extension rationality. B: the product matches the "
            "original. B is acceptable. C: same product, nothing added. C passes. D: the product floats. "
            "The acceptable images are B and C, so the answer is BC.</think><answer>BC</answer>")
    parts = H.split_reasoning(text)
    assert parts["A"] == ("A: A cup that is not in the original stands next to it. "
                          "A fails on extension rationality.")
    assert parts["B"] == "B: the product matches the original. B is acceptable."
    assert parts["C"] == "C: same product, nothing added. C passes."
    assert parts["D"] == "D: the product floats."


def test_split_reasoning_ignores_the_article_a_and_handles_partial_text():
    # "A red box" is an article, not candidate A; a response still streaming (no </think>) splits too.
    parts = H.split_reasoning("<think>A red box stands on a table. B: the shadow points the wrong way. D")
    assert parts["A"] == "" and parts["B"] == "B: the shadow points the wrong way. D" and parts["C"] == ""


def test_screen_step_marks_candidates_from_the_parsed_answer():
    step = H.screen_step("<think>A: ok. B: warped. C: ok. D: floats.</think><answer>AC</answer>", True, 1.0, 0.1)
    assert step.answer == "AC" and step.answer_text() == "AC"
    assert "accepted" in step.per_candidate["A"] and "A: ok." in step.per_candidate["A"]
    assert "rejected" in step.per_candidate["B"] and "B: warped." in step.per_candidate["B"]
    assert "acceptable: A, C" in step.status
    # No valid answer: a candidate the reasoning judged keeps that verdict; the others say so.
    bad = H.screen_step("<think>A: ok.</think>", True, 1.0, None)
    assert bad.answer is None and bad.answer_text() == "(no valid answer)"
    assert "badge-accepted" in bad.per_candidate["A"]
    assert all("no valid answer" in bad.per_candidate[l] for l in "BCD")
    # Badges are CSS classes, never emoji.
    assert not any(ch in "".join(step.per_candidate.values()) for ch in "\u2705\u274c\u26a0")


def test_verdicts_follow_the_last_statement_about_each_letter_in_any_order():
    # The model goes D, B, A, C and changes its mind about B: each badge follows the reasoning's
    # last statement about that letter; where the final answer disagrees, a note says so.
    text = "<think>D: ok. B: no, wrong shadow. A: ok. C: no, floats. B: ok, the shadow is fine.</think><answer>AD</answer>"
    step = H.screen_step(text, True, 1.0, None, truth="ABD")
    marks = {l: ("accepted" if "badge-accepted" in step.per_candidate[l].split("\n")[0] else "rejected") for l in "ABCD"}
    assert marks == {"A": "accepted", "B": "accepted", "C": "rejected", "D": "accepted"}
    assert "final answer: rejected" in step.per_candidate["B"]
    assert "B: no, wrong shadow. B: ok, the shadow is fine." in step.per_candidate["B"]
    # The true label: AD is a subset of ABD, right under the paper's metric.
    assert "True label: **ABD**" in step.status and "model right" in step.status
    assert "model wrong" in H.screen_step(text, True, 1.0, None, truth="BC").status


def test_reasoning_html_has_no_raw_tags():
    out = H.reasoning_html("<think>A: ok. B: <no> shadow.</think><answer>A</answer>", done=True)
    assert "<think>" not in out and "&lt;no&gt;" in out and "class='think'" in out
    assert "Answer:" in out and ">A</span>" in out


def test_screen_stream_with_a_real_tiny_model(tiny_internvl, five):
    # The model streams: the text grows through several steps and the final answer is parsed from it.
    screener = H.Screener.load(tiny_internvl, max_new_tokens=24)
    images = H.collect_images(*five)
    steps = list(H.screen_stream(screener, images, "cot"))
    lengths = [len(s.reasoning) for s in steps]
    assert steps[0].reasoning == "" and not steps[0].done
    assert lengths == sorted(lengths) and len(set(lengths)) >= 3
    assert steps[-1].done and steps[-1].answer == parse_answer(steps[-1].reasoning)
    assert "first token after" in steps[-1].status


def test_throttle_keeps_first_and_final_steps():
    # A burst of 50 steps within a few ms: the first and the final pass, most of the burst is dropped.
    steps = [H.screen_step("x" * i, False, 0.0, None) for i in range(50)] + [H.screen_step("x" * 50, True, 0.0, None)]
    out = list(H.throttle(iter(steps), interval=10.0))
    assert [len(s.reasoning) for s in out] == [0, 50] and out[-1].done
    assert len(list(H.throttle(iter(steps), interval=0.0))) == 51  # no interval: every step


def test_model_error_becomes_a_clear_runtime_error(tiny_internvl, five):
    # A broken model (no processor) fails with a message naming the cause; nothing else breaks.
    from labkit.models import load

    model, _ = load(tiny_internvl)
    screener = H.Screener(model, processor=None)
    with pytest.raises(RuntimeError, match="the model failed"):
        list(H.screen_stream(screener, H.collect_images(*five), "cot"))
    with pytest.raises(H.UserError, match="unknown prompt form"):
        list(H.screen_stream(screener, H.collect_images(*five), "verbose"))


# ----------------------------------------------------------------------------- labels

@pytest.mark.parametrize(
    "accepted, tags, flag, expected",
    [
        (["C", "A"], [[], ["physical_shadow"], [], []], False,
         {"answer": "AC", "candidate_defects": [[], ["physical_shadow"], [], ["unspecified"]]}),
        (["B"], [[], [], [], []], False, {"answer": "B", "candidate_defects": None}),
        (["N"], [["appearance_deformation"], [], [], []], False,
         {"answer": "N", "candidate_defects": [["appearance_deformation"], ["unspecified"], ["unspecified"], ["unspecified"]]}),
        ([], [[], [], [], []], True, {"answer": None, "candidate_defects": None}),
    ],
)
def test_build_label(accepted, tags, flag, expected):
    # Checkboxes + tags -> a label whose answer and defects agree (the store's rule).
    assert H.build_label(accepted, tags, flag) == expected


@pytest.mark.parametrize(
    "accepted, tags, flag, message",
    [
        (["N", "A"], [[]] * 4, False, "contradicts"),
        (["A"], [["physical_shadow"], [], [], []], False, "ticked acceptable but has defect tags"),
        ([], [[]] * 4, False, "nothing chosen"),
        (["E"], [[]] * 4, False, "unknown choice"),
    ],
)
def test_build_label_refuses_contradictions(accepted, tags, flag, message):
    with pytest.raises(H.UserError, match=message):
        H.build_label(accepted, tags, flag)


def test_save_show_and_undo_a_label_in_the_store(store_and_index):
    store, index = store_and_index
    key = f"{index.name}/s0001"
    # Before labelling: no choices, the dataset has no CoT, so nothing is prefilled.
    view = H.item_view(store, index, "ana", key, position="2 / 3")
    assert view.accepted == [] and view.cot == "" and view.suggestion == "" and len(view.images) == 5
    H.save_label(store, "ana", key, ["B"], [["appearance_deformation"], [], [], []], "B: unchanged.", False, 4.5)
    (ev,) = store.events(sample_id="s0001")
    assert (ev.annotator, ev.answer, ev.cot, ev.seconds, ev.cot_source) == ("ana", "B", "B: unchanged.", 4.5, "human")
    assert ev.candidate_defects == [["appearance_deformation"], [], ["unspecified"], ["unspecified"]]
    # Shown again: the annotator's label and reasoning come back.
    view = H.item_view(store, index, "ana", key)
    assert view.accepted == ["B"] and view.tags[0] == ["appearance_deformation"] and view.cot == "B: unchanged."
    # Undo retracts it and names the sample; the current label is gone, the history stays.
    assert H.undo_label(store, "ana") == key
    assert H.item_view(store, index, "ana", key).accepted == []
    assert [e.kind for e in store.events(sample_id="s0001")] == ["label", "undo"]
    assert H.undo_label(store, "ana") is None


def test_mined_responses_prefill_the_cot(store_and_index, tmp_path):
    # hard_cases.jsonl from `labkit mine-hard` carries the model's response: it prefills the CoT.
    store, index = store_and_index
    path = tmp_path / "hard_cases.jsonl"
    rows = [{"id": "s0000", "response": "<think>A: warped.</think><answer>B</answer>", "prediction": "B",
             "answer": "AC", "hard": True}, {"id": "s0001", "response": "x", "hard": False}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert store.import_hard_cases(path, index.name) == 1
    mined = H.read_mined_responses(path)
    view = H.item_view(store, index, "ana", f"{index.name}/s0000", mined=mined)
    # The mined response is a suggestion, shown apart: the annotator's reasoning box stays empty.
    assert view.suggestion == rows[0]["response"] and view.suggestion_source == "mining" and view.cot == ""
    assert [k.sample_id for k in store.queue("hard", dataset=index.name, annotator="ana")] == ["s0000"]


def test_item_of_another_dataset_or_no_key_is_refused(store_and_index):
    store, index = store_and_index
    with pytest.raises(H.UserError, match="no sample loaded"):
        H.parse_key("")
    with pytest.raises(H.UserError, match="belongs to dataset 'other'"):
        H.item_view(store, index, "ana", "other/s0000")


def test_figures_carry_the_store_numbers(store_and_index):
    store, index = store_and_index
    store.add_annotator("bo")
    H.save_label(store, "ana", f"{index.name}/s0000", ["A"], [[]] * 4)
    H.save_label(store, "bo", f"{index.name}/s0000", ["A"], [[]] * 4)
    fig = H.progress_figure(store.progress(index.name))
    bars = dict(zip(fig.data[0].x, fig.data[0].y))
    assert bars["samples"] == 3 and bars["labelled"] == 1 and bars["unlabelled"] == 2
    assert dict(zip(fig.data[1].x, fig.data[1].y)) == {"ana": 1, "bo": 1}
    # Blind by default; with show_others (a reviewer's flagged / disagreements queue) the other's
    # answer shows and the store records that ana saw it.
    assert H.item_view(store, index, "ana", f"{index.name}/s0000").others_text() == ""
    assert store.query("SELECT COUNT(*) FROM reveals")[0][0] == 0
    view = H.item_view(store, index, "ana", f"{index.name}/s0000", show_others=True)
    assert view.others_text() == "others: bo A"
    assert store.query("SELECT COUNT(*) FROM reveals")[0][0] == 1
    agree = H.agreement_figure(store.agreement(index.name))
    assert dict(zip(agree.data[0].x, agree.data[0].y))["exact answer"] == 1.0


# ----------------------------------------------------------------------------- login

def test_auth_file_hashes_roles_and_checks(tmp_path, store_and_index):
    from labkit.store import hash_password

    store, _ = store_and_index
    lines = tmp_path / "users.txt"
    H.add_user(lines, "ana", "s3cret-pw", "admin")
    H.add_user(lines, "bo", "hunter2-pw")
    text = lines.read_text()
    assert "s3cret-pw" not in text and "hunter2-pw" not in text and text.count("scrypt$") == 2
    assert oct(lines.stat().st_mode & 0o777) == "0o600"
    H.add_user(lines, "bo", "new-password", "reviewer")  # replaced, not duplicated
    with open(lines, "a") as fh:
        fh.write("cy:\n")  # no hash here: the store's password
    users = H.read_auth_file(lines)
    assert {n: u.role for n, u in users.items()} == {"ana": "admin", "bo": "reviewer", "cy": "annotator"}
    store.add_annotator("cy", password="from-store")
    auth = H.make_auth(users, store)
    assert auth("ana", "s3cret-pw") and not auth("ana", "wrong")
    assert auth("bo", "new-password") and not auth("bo", "hunter2-pw")
    assert auth("cy", "from-store") and not auth("cy", "")
    assert not auth("mallory", "s3cret-pw")  # not listed in the file
    js = tmp_path / "users.json"
    js.write_text(json.dumps({"ana": {"password": hash_password("pw"), "role": "reviewer"}}))
    assert H.read_auth_file(js)["ana"].role == "reviewer"
    # Plain-text passwords and unknown roles are refused, naming the line and the way out.
    (tmp_path / "plain.txt").write_text("ana:s3cret\n")
    with pytest.raises(ValueError, match=r"plain.txt:1: 'ana' has a plain-text password.*labkit app adduser ana"):
        H.read_auth_file(tmp_path / "plain.txt")
    (tmp_path / "role.txt").write_text(f"ana:{hash_password('x')}:boss\n")
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        H.read_auth_file(tmp_path / "role.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("no separator here\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected 'user:hash'"):
        H.read_auth_file(bad)


def test_failed_logins_are_rate_limited(store_and_index, tmp_path):
    # 200 wrong passwords: only the first 5 are checked (scrypt); then the name is locked, even
    # for the right password, until the lockout ends. Other names are unaffected.
    store, _ = store_and_index
    H.add_user(tmp_path / "u.txt", "ana", "right-password")
    H.add_user(tmp_path / "u.txt", "bo", "bo-password")
    limiter = H.LoginLimiter(max_failures=5, lockout_s=0.5, max_total=1000)
    auth = H.make_auth(H.read_auth_file(tmp_path / "u.txt"), store, limiter)
    assert sum(auth("ana", f"guess{i}") for i in range(200)) == 0
    assert limiter.refused == 195
    assert not auth("ana", "right-password")  # locked
    assert auth("bo", "bo-password")
    import time

    time.sleep(0.6)
    assert auth("ana", "right-password")


def test_cot_provenance_and_contradicting_reasoning(store_and_index):
    # Saved reasoning is human (typed or edited), model (a finished suggestion accepted as is) or
    # none; reasoning whose own answer contradicts the label is refused, naming both answers.
    store, index = store_and_index
    key = f"{index.name}/s0000"
    suggestion = "<think>A: ok. B: no. C: ok. D: no.</think><answer>AC</answer>"
    assert H.cot_provenance("", suggestion) == "none"
    assert H.cot_provenance(suggestion, suggestion) == "model"
    assert H.cot_provenance(suggestion + " edited", suggestion) == "human"
    H.save_label(store, "ana", key, ["A", "C"], [[]] * 4, suggestion, suggestion=suggestion)
    with pytest.raises(H.UserError, match=r"reasoning's own answer is 'AC' but the label's answer is 'BD'.*drop the reasoning"):
        H.save_label(store, "ana", key, ["B", "D"], [[]] * 4, suggestion, suggestion=suggestion)
    H.save_label(store, "ana", key, ["B", "D"], [[]] * 4, "", suggestion=suggestion)
    assert [(e.answer, e.cot_source) for e in store.events(sample_id="s0000")] == [("AC", "model"), ("BD", "none")]


# ----------------------------------------------------------------------------- bounded images

def test_huge_png_is_downscaled_while_decoding(tmp_path):
    # A 6000x4000 PNG (24 MP) comes back within the pixel cap, with the pixels of a full decode
    # reduced by the same factor (exact for the strip decoder), and paths never reach messages.
    import numpy as np

    from labkit.app.images import fit_factor, open_capped

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((6000, 4000), Image.Resampling.NEAREST)
    big.save(tmp_path / "big.png")
    got = H.read_upload(str(tmp_path / "big.png"), "candidate A", max_pixels=300_000)
    f = fit_factor(6000, 4000, 300_000)
    assert got.size == (6000 // f + (6000 % f > 0), 4000 // f + (4000 % f > 0)) and got.size[0] * got.size[1] <= 300_000
    reference = Image.open(tmp_path / "big.png").convert("RGB").reduce(f)
    assert np.array_equal(np.asarray(got), np.asarray(reference))
    # Palette and RGBA PNGs take the same path.
    for mode in ("P", "RGBA", "L"):
        im = big.convert(mode) if mode != "P" else big.convert("P", palette=Image.Palette.ADAPTIVE, colors=200)
        im.save(tmp_path / f"big-{mode}.png")
        out = open_capped(tmp_path / f"big-{mode}.png", 300_000)
        ref = im.convert("RGB").reduce(f)
        assert np.array_equal(np.asarray(out), np.asarray(ref)), mode
    assert H.client_message(f"cannot identify image file '{tmp_path}/x.png'") == "cannot identify image file <path>"


def test_display_copies_are_upscaled_sharply():
    from labkit.app.images import display_image

    img = Image.new("RGB", (64, 48), "red")
    img.putpixel((0, 0), (0, 0, 255))
    big = display_image(img, min_side=384)
    assert big.size == (512, 384) and big.getpixel((7, 7)) == (0, 0, 255) and big.getpixel((8, 8)) == (255, 0, 0)
    assert display_image(Image.new("RGB", (500, 400)), 384).size == (500, 400)


# ----------------------------------------------------------------------------- the demo's model

def test_app_serves_the_best_scoring_arm_and_warns_on_a_majority_answer(tmp_path):
    # results.json ranks the arms by "overall", whatever the arm order; the title names the arm
    # and score; a model answering N on 7 of 10 test samples gets a warning.
    from labkit.app.ui import model_heading
    from labkit.cli.app import best_demo_arm, find_demo_model

    demo = tmp_path / "demo"
    arms = {"hcm-grpo": 31.0, "sft": 44.5, "grpo": 40.0, "base-cot": None}
    for arm in arms:
        (demo / arm / "final").mkdir(parents=True)
        (demo / arm / "final" / "config.json").write_text("{}")
    (demo / "sft" / "eval").mkdir()
    (demo / "sft" / "eval" / "predictions.jsonl").write_text(
        "".join(json.dumps({"id": f"s{i}", "prediction": "N" if i < 7 else "AC"}) + "\n" for i in range(10)))
    results = {"arms": {a: {"overall": s, "random_baseline": 20.0, "dir": a, "model": str(demo / a / "final")}
                        for a, s in arms.items()}}
    (demo / "results.json").write_text(json.dumps(results))
    best = best_demo_arm(demo)
    assert (best["arm"], best["score"], best["model"]) == ("sft", 44.5, demo / "sft" / "final")
    assert "answers N on 7 of 10 test samples (70%)" in best["warning"]
    assert find_demo_model(demo) == demo / "sft" / "final"

    class Named:
        name = "final"

    heading, warning = model_heading("Lab", Named(), best)
    assert heading == "## Lab · model **sft** · test score **44.5** (random guess 20.0)" and "70%" in warning
    # A balanced model: no warning.
    (demo / "sft" / "eval" / "predictions.jsonl").write_text(
        "".join(json.dumps({"prediction": a}) + "\n" for a in ["N", "AC", "B", "N", "D"]))
    assert best_demo_arm(demo)["warning"] is None
