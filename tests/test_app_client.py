"""The app served on 127.0.0.1 (a free port) and driven through `gradio_client`: streaming
screening, bad input, annotations that survive a restart, concurrent clients, login, blind
labelling and roles, reasoning that is never partial or contradicting, bounded uploads, and
settings refused before the model loads.

Outputs of the Annotate events, as a client sees them (gr.State is left out): 0 key,
1 position, 2-6 images, 7 choices, 8-11 tags, 12 the annotator's reasoning, 13 the model's
suggestion, 14 its source, 15 flag, 16 status; then 17-18 the plots (save and undo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

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
    from labkit.app.main import AppConfig, serve

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
    # Fewer than five images: the message shows inline in the status line (no error dialog).
    out = c.predict(files[0], None, None, None, None, "cot", api_name="/screen")
    assert "1 of 5 images given" in out[6] and "Not done" in out[6]
    # A non-image upload in place of candidate C: named, without the server's upload path.
    from gradio_client import handle_file

    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not a picture")
    out = c.predict(files[0], files[1], files[2], handle_file(str(junk)), files[4], "direct", api_name="/screen")
    assert "candidate C is unreadable" in out[6] and "<path>" in out[6]
    assert "/tmp" not in out[6] and "Traceback" not in out[6]
    # An upload over the size limit (200 kB here, 25 MB by default) is refused before it is stored.
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(300_000))
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        c.predict(files[0], files[1], files[2], files[3], handle_file(str(big)), "cot", api_name="/screen")
    # A label that contradicts itself is refused inline, nothing is written.
    key = c.predict("unlabelled", api_name="/load_queue")[0]
    out = c.predict(key, ["A", "N"], [], [], [], [], "", False, api_name="/annotate")
    assert "contradicts" in out[16] and "Not done" in out[16]
    # So is saving with nothing chosen.
    out = c.predict(key, [], [], [], [], [], "", False, api_name="/annotate")
    assert "nothing chosen" in out[16]
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
        # The mined response is a suggestion beside an empty reasoning box.
        assert key.endswith("/s0000") and first[13].startswith("<think>A: warped 0.") and first[12] == ""
        c.predict(key, ["B", "C"], ["placement_layout"], [], [], [], "A floats. B and C are fine.", True,
                  api_name="/annotate")
    finally:
        demo.close()
    demo, url = start(app_files, store_path)
    try:
        shown = client(url).predict("flagged", api_name="/load_queue")
        assert shown[0] == key
        assert shown[7] == ["B", "C"] and shown[8] == ["placement_layout"]
        assert shown[12] == "A floats. B and C are fine." and shown[15] is True
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
            results[i] = (out[6], saved[16])
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
    from labkit.app.annotation import add_user

    auth_file = tmp_path / "annotators.txt"
    add_user(auth_file, "ana", "s3cret-pw")
    add_user(auth_file, "bo", "hunter2-pw")
    store_path = tmp_path / "auth.sqlite"
    demo, url = start(app_files, store_path, auth_file=str(auth_file))
    try:
        with pytest.raises(Exception):
            client(url).predict("hard", api_name="/load_queue")
        with pytest.raises(Exception):
            client(url, auth=("ana", "wrong"))
        for name, pw, sample in (("ana", "s3cret-pw", "s0001"), ("bo", "hunter2-pw", "s0002")):
            out = client(url, auth=(name, pw)).predict(f"ds/{sample}", ["D"], [], [], [], [], "", False,
                                                        api_name="/annotate")
            assert f"by **{name}**" in out[16]
    finally:
        demo.close()
    from labkit.store import AnnotationStore

    assert {(e.annotator, e.sample_id) for e in AnnotationStore(store_path).events()} == {("ana", "s0001"), ("bo", "s0002")}


def test_hard_case_loop_labels_export_for_training(app_files, tmp_path):
    # Mined hard cases load as the queue; labels given through the app export as a training
    # split (the store's export) that converts into SFT rows for the next run.
    from labkit.conversions import Conversion, to_sft_row
    from labkit.data import load_split
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
        assert "End of the queue" in item[16]
    finally:
        demo.close()
    summary = AnnotationStore(store_path).export_split("ds", tmp_path / "next", split="train")
    assert summary["exported"] == 3
    ds = load_split(tmp_path / "next", "train")
    assert {row["id"]: row["answer"] for row in ds} == labelled
    row = to_sft_row(ds[0], Conversion(form="cot"))
    assert len(row["images"]) == 5 and row["messages"][1]["content"][0]["text"].startswith("<think>reasoning for ds/")


# ----------------------------------------------------------------------------- blind, roles, login

@pytest.fixture
def team(app_files, tmp_path):
    """An app with login: ana (admin), bo (annotator), rev (reviewer); a 60 s login lockout."""
    from labkit.app.annotation import add_user

    auth_file = tmp_path / "team.txt"
    for name, role in (("ana", "admin"), ("bo", "annotator"), ("rev", "reviewer")):
        add_user(auth_file, name, f"{name}-password", role)
    store_path = tmp_path / "team.sqlite"
    demo, url = start(app_files, store_path, auth_file=str(auth_file), login_lockout_s=60.0)
    yield {"url": url, "store": store_path, "auth_file": auth_file,
           "c": {n: client(url, auth=(n, f"{n}-password")) for n in ("ana", "bo", "rev")}}
    demo.close()


def test_second_annotator_sees_no_answer_of_the_first(team):
    from labkit.store import AnnotationStore

    ana, bo, rev = team["c"]["ana"], team["c"]["bo"], team["c"]["rev"]
    assert ana.predict("unlabelled", api_name="/load_queue")[0] == "ds/s0000"
    ana.predict("ds/s0000", ["A"], [], [], [], [], "", False, api_name="/annotate")
    # bo's unlabelled queue starts on the item ana labelled: nothing of ana's shows, on any item.
    item = bo.predict("unlabelled", api_name="/load_queue")
    assert item[0] == "ds/s0000" and item[7] == []
    seen = [item[1]]
    for _ in range(5):
        seen.append(bo.predict(1, api_name="/move")[1])
    assert not any("ana" in text or "others" in text for text in seen), seen
    bo.predict("ds/s0000", ["B"], [], [], [], [], "", False, api_name="/annotate")
    # The disagreements queue is for reviewers: bo is refused; rev sees both answers there.
    assert "for reviewers" in bo.predict("disagreements", api_name="/load_queue")[16]
    shown = rev.predict("disagreements", api_name="/load_queue")
    assert shown[0] == "ds/s0000" and "others: ana A, bo B" in shown[1]
    rev.predict("ds/s0000", ["A"], [], [], [], [], "", False, api_name="/annotate")
    store = AnnotationStore(team["store"])
    assert {e.annotator: e.blind for e in store.events(sample_id="s0000")} == {"ana": True, "bo": True, "rev": False}
    # Agreement comes from the two blind labels only (A vs B), not the reviewer's.
    agreement = store.agreement("ds")
    assert agreement["n_samples"] == 1 and agreement["exact_agreement"] == 0.0


def test_only_an_admin_imports_hard_cases_or_removes_a_mark(team, app_files):
    from gradio_client import handle_file

    from labkit.store import AnnotationStore

    store = AnnotationStore(team["store"])
    before = [k.sample_id for k in store.queue("hard", "ds")]
    assert before == ["s0000", "s0002", "s0004"]
    other = Path(team["auth_file"]).parent / "injected.jsonl"
    other.write_text(json.dumps({"id": "s0005", "response": "<think>Trust me.</think><answer>ABCD</answer>"}) + "\n")
    for name in ("bo", "rev"):
        out = team["c"][name].predict(handle_file(str(other)), api_name="/import_hard_cases")
        assert "for admins" in out
        assert "for admins" in team["c"][name].predict("ds/s0000", api_name="/unmark_hard")
    assert [k.sample_id for k in store.queue("hard", "ds")] == before
    assert "Marked 1 new hard case" in team["c"]["ana"].predict(handle_file(str(other)), api_name="/import_hard_cases")
    assert "Removed the hard mark" in team["c"]["ana"].predict("ds/s0000", api_name="/unmark_hard")
    assert [k.sample_id for k in store.queue("hard", "ds")] == ["s0002", "s0004", "s0005"]


def test_passwords_are_hashed_and_failed_logins_rate_limited(team):
    import httpx

    text = Path(team["auth_file"]).read_text()
    assert "ana-password" not in text and text.count("scrypt$") == 3
    assert b"ana-password" not in Path(team["store"]).read_bytes()
    url = team["url"].rstrip("/")

    def login(name, password):
        return httpx.post(f"{url}/login", data={"username": name, "password": password}, timeout=60).status_code

    codes = [login("bo", f"guess-{i}") for i in range(40)]
    assert set(codes) == {400}
    # Locked after 5 failures: the right password is refused too (until the lockout ends; see
    # test_app_handlers.test_failed_logins_are_rate_limited), while other names log in.
    assert login("bo", "bo-password") == 400
    assert login("ana", "ana-password") == 200


# ----------------------------------------------------------------------------- reasoning

def test_suggestion_is_never_partial_and_contradictions_are_refused(app_files, tmp_path):
    # The model's suggestion streams into its own box; "use suggestion" is refused while it is
    # being written and then gives the whole text; saving it records model provenance. A
    # reasoning that states another answer than the label is refused at save, naming both.
    from labkit.store import AnnotationStore
    from labkit.verdicts import stated_answer

    store_path = tmp_path / "stream.sqlite"
    from labkit.app.main import AppConfig, serve

    demo = serve(AppConfig(model=str(app_files["model"]), store=str(store_path), data=str(app_files["data"]),
                           port=0, max_new_tokens=400, prefill_cot=False), block=False)
    try:
        c = client(demo.local_url)
        key = c.predict("unlabelled", api_name="/load_queue")[0]
        job = c.submit(key, api_name="/ask_model")
        while not job.outputs() and not job.done():
            time.sleep(0.02)
        mid = c.predict(key, "", api_name="/use_suggestion")
        final = job.result()
        # Asked while the model wrote: refused, never a partial text (had the stream just ended, the whole one).
        assert "still writing" in mid[1] or mid[0] == final[0], mid
        assert final[1] == "suggestion from: model"
        used = c.predict(key, "", api_name="/use_suggestion")
        assert used[0] == final[0] and len(used[0]) >= max(len(o[0]) for o in job.outputs())
        # Typed text is never overwritten by the suggestion.
        assert "not empty" in c.predict(key, "my own words", api_name="/use_suggestion")[1]
        stated = stated_answer(used[0])
        choice = ["A"] if stated != "A" else ["B"]
        out = c.predict(key, choice, [], [], [], [], "A: ok.</think><answer>CD</answer>", False, api_name="/annotate")
        assert "reasoning's own answer is 'CD'" in out[16] and f"label's answer is '{choice[0]}'" in out[16]
        out = c.predict(key, choice, [], [], [], [], "A: ok.</think><answer>CD</answer>", False,
                        api_name="/annotate_without_reasoning")
        assert "Without reasoning" in out[16]
        if stated is None or stated == choice[0]:
            c.predict(key, choice, [], [], [], [], used[0], False, api_name="/annotate")
    finally:
        demo.close()
    events = AnnotationStore(store_path).events()
    assert (events[0].cot, events[0].cot_source) == ("", "none")
    assert all(e.cot == "" or e.cot == used[0] for e in events)
    # The accepted suggestion is stored as model reasoning (a tiny random model may write only blanks: none).
    assert all(e.cot_source == ("model" if used[0].strip() else "none") for e in events[1:])
    assert not Path(demo.temp_dir).exists()  # the app's temporary folder is gone after close


# ----------------------------------------------------------------------------- data and settings

def test_a_second_dataset_with_the_same_name_is_refused(app_files, tmp_path, monkeypatch):
    from labkit.app import handlers as H
    from labkit.app.main import AppConfig, ConfigError, serve
    from labkit.data import save_split
    from labkit.store import AnnotationStore

    store_path = tmp_path / "two.sqlite"
    AnnotationStore(store_path).register_split(app_files["data"], "train")
    other = tmp_path / "elsewhere" / "ds"  # the same folder name, other images
    save_split([make_sample(i, "A", original=Image.new("RGB", (32, 32), "black")) for i in range(3)], other, "train")
    loads = []
    monkeypatch.setattr(H.Screener, "load", classmethod(lambda cls, *a, **kw: loads.append(a)))
    with pytest.raises(ConfigError, match=r"dataset name 'ds' .* belongs to other content.*another name"):
        serve(AppConfig(model=str(app_files["model"]), store=str(store_path), data=str(other), port=0), block=False)
    assert loads == []  # refused before the model loads
    assert len(AnnotationStore(store_path).samples("ds")) == 6  # only the first dataset's samples


def test_huge_upload_is_downscaled(served, app_files, tmp_path):
    # A 12000x12000 PNG (a few hundred KB) is decoded strip by strip into <= 1 MP.
    from gradio_client import handle_file

    big = Image.new("L", (12000, 12000), 200)
    big.paste(40, (3000, 3000, 9000, 9000))
    big.save(tmp_path / "huge.png")
    del big
    assert (tmp_path / "huge.png").stat().st_size < 200_000  # under the served app's 200 kB upload limit
    files = uploads(app_files)
    out = client(served).predict(*files[:4], handle_file(str(tmp_path / "huge.png")), "direct", api_name="/screen")
    assert out[6].startswith("Done in") and "candidate D 12000x12000 -> 1000x1000" in out[6]


def run_cli(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=Path(__file__).resolve().parents[1])


def test_unsafe_or_bad_settings_exit_before_loading(app_files, tmp_path):
    # A public host without login, a plain-text or missing auth file, a missing model: each exits
    # non-zero at once with a message naming the problem.
    model, data = str(app_files["model"]), str(app_files["data"])
    base = ["app", "--model", model, "--data", data, "--store", str(tmp_path / "s.sqlite"), "--port", "0"]
    r = run_cli(*base, "--host", "0.0.0.0")
    assert r.returncode == 2 and "--auth-file" in r.stderr and "--insecure" in r.stderr
    (tmp_path / "plain.txt").write_text("ana:secret\n")
    r = run_cli(*base, "--auth-file", str(tmp_path / "plain.txt"))
    assert r.returncode == 2 and "plain-text password" in r.stderr
    r = run_cli(*base, "--auth-file", str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli("app", "--model", str(tmp_path / "nope"), "--data", data, "--store", str(tmp_path / "s.sqlite"))
    assert r.returncode == 2 and "no config.json" in r.stderr
    assert not (tmp_path / "s.sqlite").exists()  # nothing was opened
    # adduser writes a hash (password from stdin), and the file then passes the check.
    p = subprocess.run([sys.executable, "-m", "labkit", "app", "adduser", "ana", "--auth-file", str(tmp_path / "a.txt"),
                        "--role", "reviewer", "--password-stdin"], input="long-enough-pw\n", capture_output=True,
                       text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert p.returncode == 0, p.stderr
    line = (tmp_path / "a.txt").read_text().splitlines()[-1]
    assert line.startswith("ana:scrypt$") and line.endswith(":reviewer") and "long-enough-pw" not in line
