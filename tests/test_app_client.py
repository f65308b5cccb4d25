"""The app served on 127.0.0.1 (a free port) and driven through `gradio_client`: streaming
screening, bad input, annotations that survive a restart, concurrent clients, login."""
from __future__ import annotations

import json
import os
import threading

import pytest
from PIL import Image

from conftest import make_sample
from labkit.metrics import parse_answer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_files(tmp_path_factory, tiny_internvl):
    """A dataset (6 samples), a mining output marking 3 hard, five upload images."""
    from labkit.data import save_split

    root = tmp_path_factory.mktemp("app")
    answers = ["AC", "B", "N", "ABCD", "A", "BD"]
    save_split([make_sample(i, a) for i, a in enumerate(answers)], root / "ds", "train")
    rows = [{"id": f"s{i:04d}", "response": f"<think>A: warped {i}.</think><answer>B</answer>", "prediction": "B",
             "answer": a, "dimension": "physical_shadow", "hard": i % 2 == 0} for i, a in enumerate(answers)]
    (root / "hard_cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    uploads = []
    for i, color in enumerate(["white", "red", "blue", "green", "gray"]):
        Image.new("RGB", (48, 48), color).save(root / f"up{i}.png")
        uploads.append(str(root / f"up{i}.png"))
    return {"root": root, "data": root / "ds", "hard": root / "hard_cases.jsonl", "uploads": uploads,
            "model": tiny_internvl}


def start(files, store_path, **kw):
    """Launch the app without blocking; returns (demo, url)."""
    from app.main import AppConfig, serve

    cfg = AppConfig(model=str(files["model"]), store=str(store_path), data=str(files["data"]),
                    hard_cases=str(files["hard"]), port=0, max_new_tokens=48, prefill_cot=False, **kw)
    demo = serve(cfg, block=False)
    return demo, demo.local_url


@pytest.fixture(scope="module")
def model_loads():
    """Counts calls of labkit.models.load while the module's app serves."""
    import labkit.models

    calls = []
    real = labkit.models.load

    def counting_load(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(labkit.models, "load", counting_load)
        yield calls


@pytest.fixture(scope="module")
def served(app_files, model_loads):
    demo, url = start(app_files, app_files["root"] / "store.sqlite", max_file_size="200kb")
    yield url
    demo.close()


def client(url, **kw):
    from gradio_client import Client

    # A generous HTTP timeout: on a loaded 2-core machine the app may answer slowly while the
    # model generates for other clients (httpx's default is 5 s).
    return Client(url, verbose=False, httpx_kwargs={"timeout": 120}, **kw)


def uploads(files):
    from gradio_client import handle_file

    return [handle_file(p) for p in files["uploads"]]


def test_binds_localhost_only(served):
    # The default host is 127.0.0.1: the app is not reachable from other machines.
    assert served.startswith("http://127.0.0.1:")


def test_screen_streams_reasoning_and_answer(served, app_files):
    # /screen streams: the reasoning grows over several updates; the final output carries the
    # parsed answer of that reasoning and a verdict per candidate.
    c = client(served)
    job = c.submit(*uploads(app_files), "cot", api_name="/screen")
    seen = [out[0] for out in job]
    final = job.result()
    assert len({len(s) for s in seen}) >= 3 and seen == sorted(seen, key=len)
    reasoning, answer = final[0], final[1]
    assert reasoning == seen[-1]
    parsed = parse_answer(reasoning)
    assert answer == (parsed if parsed is not None else "(no valid answer)")
    assert [final[2 + i].startswith(f"### {l}:") for i, l in enumerate("ABCD")] == [True] * 4
    assert final[6].startswith("Done in")


def test_bad_input_gets_a_message_and_the_app_keeps_serving(served, app_files, tmp_path):
    from gradio_client.exceptions import AppError

    c = client(served)
    files = uploads(app_files)
    # Fewer than five images.
    with pytest.raises(AppError, match="1 of 5 images given"):
        c.predict(files[0], None, None, None, None, "cot", api_name="/screen")
    # A non-image upload in place of candidate C.
    from gradio_client import handle_file

    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not a picture")
    with pytest.raises(AppError, match="candidate C is unreadable"):
        c.predict(files[0], files[1], files[2], handle_file(str(junk)), files[4], "direct", api_name="/screen")
    # An upload over the size limit (200 kB here, 25 MB by default) is refused before it is stored.
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(300_000))
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        c.predict(files[0], files[1], files[2], files[3], handle_file(str(big)), "cot", api_name="/screen")
    # A label that contradicts itself is refused, nothing is written.
    key = c.predict("unlabelled", api_name="/load_queue")[0]
    with pytest.raises(AppError, match="contradicts"):
        c.predict(key, ["A", "N"], [], [], [], [], "", False, api_name="/annotate")
    # Still serving: a valid screening works afterwards.
    out = c.predict(*files, "direct", api_name="/screen")
    assert out[6].startswith("Done in")


def test_annotation_persists_across_a_restart(app_files, tmp_path):
    # Label a hard case through the app, stop it, start a new app on the same store file:
    # the flagged queue shows that label with its choices, tags, CoT and flag.
    store_path = tmp_path / "persist.sqlite"
    demo, url = start(app_files, store_path)
    try:
        c = client(url)
        first = c.predict("hard", api_name="/load_queue")
        key = first[0]
        assert key.endswith("/s0000") and first[12].startswith("<think>A: warped 0.")  # CoT from mining
        c.predict(key, ["B", "C"], ["placement_layout"], [], [], [], "A floats. B and C are fine.", True,
                  api_name="/annotate")
    finally:
        demo.close()
    demo, url = start(app_files, store_path)
    try:
        shown = client(url).predict("flagged", api_name="/load_queue")
        assert shown[0] == key
        assert shown[7] == ["B", "C"] and shown[8] == ["placement_layout"]
        assert shown[12] == "A floats. B and C are fine." and shown[14] is True
    finally:
        demo.close()
    from labkit.store import AnnotationStore

    (ev,) = AnnotationStore(store_path).events()
    assert (ev.sample_id, ev.answer, ev.flag, ev.annotator) == ("s0000", "BC", True, "annotator")
    assert ev.candidate_defects == [["placement_layout"], [], [], ["unspecified"]]


def test_concurrent_clients(served, app_files):
    # Four clients at once: each screens and labels its own sample; all succeed, nothing is lost.
    from labkit.store import AnnotationStore

    store = AnnotationStore(app_files["root"] / "store.sqlite")
    before = len(store.events())
    results, errors = {}, []

    def work(i):
        try:
            c = client(served)
            out = c.predict(*uploads(app_files), "cot", api_name="/screen")
            saved = c.predict(f"ds/s000{i}", ["A"], [], [], [], [], f"client {i}", False, api_name="/annotate")
            results[i] = (out[6], saved[15])
        except Exception:  # collected and reported below
            import traceback

            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, "\n".join(errors)
    assert sorted(results) == [0, 1, 2, 3]
    assert all(r[0].startswith("Done in") and r[1].startswith(f"Saved `ds/s000{i}`") for i, r in results.items())
    events = store.events()[before:]
    assert sorted(e.cot for e in events) == [f"client {i}" for i in range(4)]


def test_model_loaded_once_at_start(served, app_files, model_loads):
    # The model is loaded when the app starts, never per request: requests add no load.
    assert len(model_loads) >= 1
    before = len(model_loads)
    c = client(served)
    for form in ("cot", "direct", "cot"):
        assert c.predict(*uploads(app_files), form, api_name="/screen")[6].startswith("Done in")
    c.predict("ds/s0005", api_name="/ask_model")
    assert len(model_loads) == before


def test_login_required_and_labels_attributed(app_files, tmp_path):
    # With an auth file, an anonymous client is refused and each label carries its annotator.
    auth_file = tmp_path / "annotators.txt"
    auth_file.write_text("ana:s3cret\nbo:hunter2\n")
    store_path = tmp_path / "auth.sqlite"
    demo, url = start(app_files, store_path, auth_file=str(auth_file))
    try:
        with pytest.raises(Exception):
            client(url).predict("hard", api_name="/load_queue")
        with pytest.raises(Exception):
            client(url, auth=("ana", "wrong"))
        for name, pw, sample in (("ana", "s3cret", "s0001"), ("bo", "hunter2", "s0002")):
            out = client(url, auth=(name, pw)).predict(f"ds/{sample}", ["D"], [], [], [], [], "", False,
                                                        api_name="/annotate")
            assert f"by **{name}**" in out[15]
    finally:
        demo.close()
    from labkit.store import AnnotationStore

    assert {(e.annotator, e.sample_id) for e in AnnotationStore(store_path).events()} == {("ana", "s0001"), ("bo", "s0002")}


def test_hard_case_loop_labels_export_for_training(app_files, tmp_path):
    # Mined hard cases load as the queue; labels given through the app export as a training
    # split (the store's export) that converts into SFT rows for the next run.
    from labkit.data import Conversion, load_split, to_sft_row
    from labkit.store import AnnotationStore

    store_path = tmp_path / "loop.sqlite"
    demo, url = start(app_files, store_path)
    try:
        c = client(url)
        item = c.predict("hard", api_name="/load_queue")
        labelled = {}
        for answer in (["A", "C"], ["N"], ["B"]):
            key = item[0]
            tags = [[] if letter in answer else ["appearance_deformation"] for letter in "ABCD"]
            item = c.predict(key, answer, *tags, f"reasoning for {key}", False, api_name="/annotate")
            labelled[key.split("/")[1]] = "".join(answer)
        assert sorted(labelled) == ["s0000", "s0002", "s0004"]  # the hard ids of the mining file
        assert "End of the queue" in item[15]
    finally:
        demo.close()
    summary = AnnotationStore(store_path).export_split("ds", tmp_path / "next", split="train")
    assert summary["exported"] == 3
    ds = load_split(tmp_path / "next", "train")
    assert {row["id"]: row["answer"] for row in ds} == labelled
    row = to_sft_row(ds[0], Conversion(form="cot"))
    assert len(row["images"]) == 5 and row["messages"][1]["content"][0]["text"].startswith("<think>reasoning for ds/")
