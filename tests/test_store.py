"""The annotation store (labkit.store, labkit.store.queries): labels, undo, queues, agreement,
export into training, schema migrations, and durability under concurrent and killed writers."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.store import AnnotationStore, StoreError, migrate, read_hard_ids, schema_version
from labkit.store.queries import fleiss_kappa

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path, handmade_dataset):
    st = AnnotationStore(tmp_path / "labels.sqlite")
    st.add_annotator("ana")
    st.add_annotator("bo")
    st.add_annotator("cy")
    st.register_split(handmade_dataset, "train", dataset="hm")
    return st


def test_wal_mode_and_schema_version(store):
    # The file is in WAL mode and at the newest schema version.
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.version == 4
    assert [r[0] for r in store.query("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3, 4]


def test_events_are_append_only_in_the_database(store):
    # Even raw SQL cannot rewrite or delete history (triggers of schema version 3).
    store.add_label("ana", "hm", "s0000", answer="A")
    conn = sqlite3.connect(store.path)
    for sql in ("UPDATE events SET answer = 'B'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()
    assert [e.answer for e in store.events()] == ["A"]
    assert store.sample_source("hm", "s0000")[1] == "train"


def test_register_is_idempotent(store, handmade_dataset):
    # Re-registering the same split adds nothing; ids come from the Parquet file.
    assert store.register_split(handmade_dataset, "train", dataset="hm") == 0
    assert [k.sample_id for k in store.samples("hm")] == ["s0000", "s0001", "s0002", "s0003"]


def test_labels_are_canonical_and_latest_wins(store):
    # Answers are canonicalised; the current label is the annotator's latest event.
    store.add_label("ana", "hm", "s0000", answer="c, a", seconds=4.0)
    store.add_label("ana", "hm", "s0000", answer="A")
    cur = store.current_labels("hm")
    assert cur[("hm", "s0000")]["ana"].answer == "A"
    events = store.events("hm", "s0000")
    assert [e.answer for e in events] == ["AC", "A"] and events[0].seconds == 4.0


def test_defects_give_the_answer_and_must_agree(store):
    # Defect tags imply the answer; a contradicting answer is refused with a clear error.
    store.add_label("bo", "hm", "s0001", candidate_defects=[["physical_shadow"], [], ["placement_layout"], ["x"]])
    assert store.current_labels("hm")[("hm", "s0001")]["bo"].answer == "B"
    with pytest.raises(StoreError, match="disagrees with the defect tags"):
        store.add_label("bo", "hm", "s0001", answer="A", candidate_defects=[[], [], ["t"], ["t"]])
    with pytest.raises(StoreError, match="invalid answer"):
        store.add_label("bo", "hm", "s0001", answer="E")
    with pytest.raises(StoreError, match="needs an answer"):
        store.add_label("bo", "hm", "s0001")
    with pytest.raises(StoreError, match="unknown annotator"):
        store.add_label("zed", "hm", "s0001", answer="A")
    with pytest.raises(StoreError, match="unknown sample"):
        store.add_label("bo", "hm", "nope", answer="A")
    # Refused labels left no trace.
    assert len(store.events("hm", "s0001")) == 1


def test_undo_is_an_event_and_walks_back(store):
    # Undo appends an event retracting the latest standing label; repeated undos go further back.
    store.add_label("ana", "hm", "s0000", answer="AC")
    store.add_label("ana", "hm", "s0000", answer="B")
    store.add_label("ana", "hm", "s0001", answer="B")
    assert store.undo("ana") == ("hm", "s0001")            # last label anywhere
    assert ("hm", "s0001") not in store.current_labels("hm")
    assert store.undo("ana", "hm", "s0000") == ("hm", "s0000")
    assert store.current_labels("hm")[("hm", "s0000")]["ana"].answer == "AC"
    assert store.undo("ana", "hm", "s0000") == ("hm", "s0000")
    assert store.undo("ana", "hm", "s0000") is None          # nothing left
    kinds = [e.kind for e in store.events(annotator="ana")]
    assert kinds == ["label", "label", "label", "undo", "undo", "undo"]  # append-only history


def test_passwords(tmp_path):
    # Passwords are stored as scrypt hashes and checked; annotators without one need none.
    st = AnnotationStore(tmp_path / "p.sqlite")
    st.add_annotator("ana", password="correct horse")
    st.add_annotator("bo")
    stored = st.query("SELECT password_hash FROM annotators WHERE name='ana'")[0][0]
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert st.verify_annotator("ana", "correct horse")
    assert not st.verify_annotator("ana", "wrong") and not st.verify_annotator("ana", None)
    assert st.verify_annotator("bo") and not st.verify_annotator("nobody")


def test_queues_and_progress(store, tmp_path):
    # unlabelled / hard / flagged / disagreements follow the current labels.
    store.add_label("ana", "hm", "s0000", answer="AC")
    store.add_label("bo", "hm", "s0000", answer="AC")
    store.add_label("ana", "hm", "s0001", answer="B")
    store.add_label("bo", "hm", "s0001", answer="BD")        # tie 1-1 -> flagged + disagreement
    store.add_label("cy", "hm", "s0002", flag=True, note="blurry")  # flagged without an answer
    hard = tmp_path / "hard.jsonl"
    hard.write_text('{"id": "s0003", "hard": true}\n{"id": "s0000", "hard": false}\n')
    assert store.import_hard_cases(hard, "hm") == 1
    ids = lambda keys: [k.sample_id for k in keys]
    assert ids(store.queue("unlabelled", "hm")) == ["s0003"]
    assert ids(store.queue("unlabelled", "hm", annotator="ana")) == ["s0002", "s0003"]
    assert ids(store.queue("hard", "hm")) == ["s0003"]
    assert ids(store.queue("flagged", "hm")) == ["s0001", "s0002"]
    assert ids(store.queue("disagreements", "hm")) == ["s0001"]
    p = store.progress("hm")
    assert (p["samples"], p["labelled"], p["agreed"], p["ties"], p["flagged"], p["hard"]) == (4, 3, 1, 1, 1, 1)
    assert p["per_annotator"] == {"ana": 2, "bo": 2, "cy": 1} and p["events"] == 5
    with pytest.raises(StoreError, match="unknown queue"):
        store.queue("later")


def test_hard_case_file_formats(tmp_path, store):
    # Plain lists, JSON lists/objects and JSONL with a hard flag are read; unknown ids are refused.
    (tmp_path / "a.txt").write_text("s0001\n# comment\ns0002\ns0001\n")
    (tmp_path / "b.json").write_text(json.dumps([{"id": "s0001", "hard": True}, {"id": "s0002", "hard": False}]))
    (tmp_path / "c.json").write_text(json.dumps({"hard": ["s0003"]}))
    assert read_hard_ids(tmp_path / "a.txt") == ["s0001", "s0002"]
    assert read_hard_ids(tmp_path / "b.json") == ["s0001"]
    assert read_hard_ids(tmp_path / "c.json") == ["s0003"]
    (tmp_path / "bad.txt").write_text("s0001\nghost\n")
    with pytest.raises(StoreError, match="ghost"):
        store.import_hard_cases(tmp_path / "bad.txt", "hm")
    assert store.queue("hard", "hm") == []                      # all or nothing


def test_fleiss_kappa_hand_computed():
    # 3 subjects, 3 raters, categories (accepted, rejected): rows [3,0], [2,1], [0,3].
    # P_i = (Σ n_ij² − n) / (n(n−1)): (9−3)/6 = 1, (4+1−3)/6 = 1/3, (9−3)/6 = 1 -> P̄ = 7/9.
    # p_accepted = 5/9, p_rejected = 4/9 -> P_e = 25/81 + 16/81 = 41/81.
    # κ = (7/9 − 41/81) / (1 − 41/81) = (63/81 − 41/81) / (40/81) = 22/40 = 0.55.
    assert fleiss_kappa([[3, 0], [2, 1], [0, 3]]) == pytest.approx(0.55)
    assert fleiss_kappa([[2, 0], [2, 0]]) is None              # one category only: undefined
    assert fleiss_kappa([[1, 0]]) is None                      # no subject with two raters


def test_agreement_from_labels(store):
    # The same example through the store, candidate A: s0000 all accept, s0001 2 of 3, s0002 none.
    for name, answers in {"ana": ["AB", "AB", "B"], "bo": ["AB", "A", "B"], "cy": ["AB", "B", "B"]}.items():
        for sid, a in zip(["s0000", "s0001", "s0002"], answers):
            store.add_label(name, "hm", sid, answer=a)
    ag = store.agreement("hm")
    assert ag["n_samples"] == 3
    assert ag["kappa"]["A"] == pytest.approx(0.55)
    # B: rows [3,0], [2,1], [3,0] -> P̄ = 7/9, p = (8/9, 1/9), P_e = 65/81, κ = (63−65)/(81−65) = −0.125.
    assert ag["kappa"]["B"] == pytest.approx(-0.125)
    assert ag["kappa"]["C"] is None and ag["kappa"]["D"] is None   # everyone rejected C and D
    assert ag["exact_agreement"] == pytest.approx(2 / 3)
    # pairwise: s0000 1, s0001 (AB, A, B: no agreeing pair) 0, s0002 1 -> 2/3.
    assert ag["pairwise_exact"] == pytest.approx(2 / 3)


def test_export_round_trip_into_training(store, handmade_dataset, tmp_path):
    # Majority labels become a new dataset split that loads, validates and converts to SFT rows.
    from labkit.conversions import convert
    from labkit.data import load_split

    before = (handmade_dataset / "train.parquet").read_bytes()
    store.add_label("ana", "hm", "s0000", answer="A", candidate_defects=[[], ["physical_shadow"]] + [["placement_layout"]] * 2,
                    cot="Only A keeps the product intact.")
    store.add_label("bo", "hm", "s0000", answer="A")
    store.add_label("cy", "hm", "s0000", answer="AC")            # outvoted 2-1
    store.add_label("ana", "hm", "s0001", answer="B")
    store.add_label("bo", "hm", "s0001", answer="N")             # tie -> not exported
    store.add_label("ana", "hm", "s0002", answer="N")
    out = tmp_path / "adjudicated"
    summary = store.export_split("hm", out, split="train")
    assert summary["exported"] == 2 and summary["ties"] == 1 and summary["unlabelled"] == 1
    ds = load_split(out, "train")
    rows = {r["id"]: r for r in ds}
    assert set(rows) == {"s0000", "s0002"}
    assert rows["s0000"]["answer"] == "A" and rows["s0000"]["cot"] == "Only A keeps the product intact."
    assert rows["s0000"]["candidate_defects"] == [[], ["physical_shadow"], ["placement_layout"], ["placement_layout"]]
    assert rows["s0000"]["dimension"] == "placement_layout"      # most common tag (answer changed from AC)
    assert json.loads(rows["s0000"]["meta"])["annotation"]["votes"] == {"A": 2, "AC": 1}
    assert rows["s0002"]["answer"] == "N" and rows["s0002"]["dimension"] == "physical_shadow"  # unchanged answer
    assert json.loads((out / "dataset.json").read_text())["parent"] == str(handmade_dataset.resolve())
    sft = convert(ds, "sft")
    target = sft[0]["messages"][1]["content"][0]["text"]
    assert target == "<think>Only A keeps the product intact.</think><answer>A</answer>"
    assert (handmade_dataset / "train.parquet").read_bytes() == before      # source untouched
    with pytest.raises(StoreError, match="already has"):
        store.export_split("hm", out)
    with pytest.raises(StoreError, match="source dataset"):
        store.export_split("hm", handmade_dataset, split="test")


def test_migration_from_version_1(tmp_path):
    # A store written by schema version 1 opens, is upgraded to 4, and keeps its events.
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO annotators (name, created_at) VALUES ('ana', '2026-01-01')")
    conn.execute("INSERT INTO samples (dataset, sample_id, split) VALUES ('hm', 's0000', 'train')")
    conn.execute("INSERT INTO events (sample, annotator, created_at, kind, answer, cot, flag) "
                 "VALUES (1, 1, '2026-01-01', 'label', 'AC', 'old', 0)")
    assert [r[1] for r in conn.execute("PRAGMA table_info(events)")].count("note") == 0
    conn.close()
    st = AnnotationStore(path)
    assert st.version == 4 == schema_version(sqlite3.connect(path))
    ev = st.current_labels()[("hm", "s0000")]["ana"]
    assert (ev.answer, ev.cot, ev.note) == ("AC", "old", "")
    st.add_label("ana", "hm", "s0000", answer="B", note="new column")
    assert st.events()[-1].note == "new column"


def test_refuses_newer_schema(tmp_path):
    # A store from a newer labkit is refused, not silently used.
    path = tmp_path / "new.sqlite"
    AnnotationStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future')")
    conn.close()
    with pytest.raises(StoreError, match="newer than this labkit"):
        AnnotationStore(path)


WRITER = """
import os, sys, time
from labkit.store import AnnotationStore
path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
st = AnnotationStore(path)
while not os.path.exists(path + ".go"):   # start together, so the writers really contend
    time.sleep(0.005)
for i in range(n):
    st.add_label(f"w{worker}", "hm", f"s{i % 4:04d}", answer="ABCD"[i % 4], cot=f"w{worker}-{i}", seconds=i)
"""


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path):
    # 8 writer processes x 200 events at once: all 1600 events are there, each exactly once.
    path = tmp_path / "c.sqlite"
    st = AnnotationStore(path)
    st.register_samples("hm", [f"s{i:04d}" for i in range(4)], split="train")
    for w in range(8):
        st.add_annotator(f"w{w}")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), "200"], cwd=REPO,
                              stderr=subprocess.PIPE) for w in range(8)]
    time.sleep(0.5)
    Path(str(path) + ".go").touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    cots = [e.cot for e in st.events()]
    assert len(cots) == 1600
    assert set(cots) == {f"w{w}-{i}" for w in range(8) for i in range(200)}
    assert st.integrity_check() == "ok"
    assert st.progress("hm")["per_annotator"] == {f"w{w}": 4 for w in range(8)}


KILLED = """
import sys
from labkit.store import AnnotationStore
st = AnnotationStore(sys.argv[1])
big = "x" * 19_000   # large events (under MAX_COT_CHARS): the kill often lands inside a write
i = 0
while True:
    eid = st.add_label("k", "hm", "s0000", answer="A", cot=f"{i}:" + big)
    print(eid, flush=True)   # printed only after the commit returned
    i += 1
"""


@pytest.mark.slow
def test_killed_writer_loses_at_most_its_event_in_flight(tmp_path):
    # SIGKILL a writer mid-stream, three times: every acknowledged event survives, at most one
    # unacknowledged one was committed, and the file passes PRAGMA integrity_check.
    path = tmp_path / "k.sqlite"
    st = AnnotationStore(path)
    st.register_samples("hm", ["s0000"], split="train")
    st.add_annotator("k")
    acked: list[int] = []
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], cwd=REPO, stdout=subprocess.PIPE)
        seen = 0
        while seen < 15 + 7 * round_:   # vary where the kill lands
            line = p.stdout.readline()
            assert line, "writer died on its own"
            acked.append(int(line))
            seen += 1
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        for line in p.stdout.read().split():   # acknowledged before the kill but not yet read
            acked.append(int(line))
        p.stdout.close()
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in check.execute("SELECT id FROM events")}
        check.close()
        assert set(acked) <= stored
        assert len(stored) - len(acked) <= round_ + 1   # at most one unacknowledged event per kill
    reopened = AnnotationStore(path)
    assert reopened.integrity_check() == "ok"
    assert all(e.cot.endswith("x" * 1000) for e in reopened.events())   # no torn events


def test_cli_round_trip(tmp_path, handmade_dataset, monkeypatch, capsys):
    # `labkit store` init / add-annotator (password from stdin) / register / import-hard (a mining
    # folder) / queue / agreement / export, on one file.
    import io

    from labkit.cli import main

    db = str(tmp_path / "cli.sqlite")
    assert main(["store", "init", "--db", db]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw1\n"))
    assert main(["store", "add-annotator", "ana", "--password-stdin", "--db", db]) == 0
    assert main(["store", "add-annotator", "bo", "--db", db]) == 0
    assert main(["store", "register", "--data", str(handmade_dataset), "--split", "train", "--dataset", "hm", "--db", db]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hard_cases.jsonl").write_text("".join(json.dumps({"id": f"s000{i}", "hard": i % 2 == 1}) + "\n" for i in range(4)))
    assert main(["store", "import-hard", str(mine), "--dataset", "hm", "--db", db]) == 0
    st = AnnotationStore(db)
    assert st.verify_annotator("ana", "pw1") and not st.verify_annotator("ana", "pw2")
    for name in ("ana", "bo"):
        st.add_label(name, "hm", "s0001", answer="B")
    capsys.readouterr()
    assert main(["store", "queue", "hard", "--dataset", "hm", "--db", db]) == 0
    assert capsys.readouterr().out.split() == ["hm", "s0001", "hm", "s0003"]
    assert main(["store", "agreement", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact_agreement"] == 1.0
    assert main(["store", "export", "--dataset", "hm", "--out", str(tmp_path / "exp"), "--min-votes", "2", "--db", db]) == 0
    assert "exported 1 sample" in capsys.readouterr().out
    assert main(["store", "import-hard", str(tmp_path / "nope.txt"), "--dataset", "hm", "--db", db]) == 1   # clear error


# ----------------------------------------------------------------------------- issue 15: trust

def test_reasoning_limits_provenance_and_contradictions(store):
    # Reasoning over MAX_COT_CHARS and reasoning whose own answer contradicts the label are
    # refused (both answers named); provenance is stored; empty reasoning is "none".
    from labkit.store import MAX_COT_CHARS

    with pytest.raises(StoreError, match=r"reasoning is 20,001 characters; the limit is 20,000"):
        store.add_label("ana", "hm", "s0000", answer="A", cot="x" * (MAX_COT_CHARS + 1))
    with pytest.raises(StoreError, match=r"own answer is 'BD' but the label's answer is 'AC'.*drop the reasoning"):
        store.add_label("ana", "hm", "s0000", answer="AC", cot="<think>A: no.</think><answer>BD</answer>")
    with pytest.raises(StoreError, match=r"own answer is 'N'"):
        store.add_label("ana", "hm", "s0000", answer="B", cot="Nothing fits, so the answer is none.")
    with pytest.raises(StoreError, match="unknown reasoning source"):
        store.add_label("ana", "hm", "s0000", answer="A", cot="A: ok.", cot_source="oracle")
    store.add_label("ana", "hm", "s0000", answer="AC", cot="A: ok. C: ok, so the answer is AC.", cot_source="model")
    store.add_label("bo", "hm", "s0000", answer="AC", cot="   ")
    assert [(e.annotator, e.cot_source) for e in store.events()] == [("ana", "model"), ("bo", "none")]


def test_export_refuses_contradicting_reasoning_or_drops_it(store, tmp_path):
    # A store written before the check holds a label whose reasoning says BD while the label is
    # A: the export refuses (naming the sample and both answers) unless asked to drop that reasoning.
    from labkit.data import load_split

    store.add_label("ana", "hm", "s0000", answer="A", cot="A: ok, so the answer is A.")
    store.add_label("ana", "hm", "s0001", answer="B")
    sample = store.query("SELECT id FROM samples WHERE sample_id = 's0001'")[0][0]
    annotator = store.query("SELECT id FROM annotators WHERE name = 'bo'")[0][0]
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO events (sample, annotator, created_at, kind, answer, cot) VALUES (?, ?, 'then', 'label', "
                 "'B', '<think>B: no.</think><answer>CD</answer>')", (sample, annotator))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"1 sample\(s\) carry reasoning that contradicts.*s0001: the reasoning's own "
                                         r"answer is 'CD' but the label's answer is 'B'.*--drop-bad-reasoning"):
        store.export_split("hm", tmp_path / "out", split="train")
    assert not (tmp_path / "out" / "train.parquet").exists()
    summary = store.export_split("hm", tmp_path / "out", split="train", drop_bad_reasoning=True)
    assert summary["exported"] == 2 and summary["reasoning_dropped"] == 1
    rows = {r["id"]: r for r in load_split(tmp_path / "out", "train")}
    assert rows["s0001"]["cot"] == "" and rows["s0000"]["cot"] == "A: ok, so the answer is A."
    assert json.loads(rows["s0000"]["meta"])["annotation"]["cot_source"] == "human"


def test_blind_labels_only_in_agreement(store):
    # bo saw ana's answer before labelling: bo's label is not blind and stays out of agreement,
    # but a blind label bo gave earlier still counts.
    store.add_label("ana", "hm", "s0000", answer="A")
    store.add_label("bo", "hm", "s0000", answer="B")            # blind
    store.record_reveal("bo", "hm", "s0000")
    store.add_label("bo", "hm", "s0000", answer="A")            # after seeing ana's A
    assert [e.blind for e in store.events(sample_id="s0000")] == [True, True, False]
    ag = store.agreement("hm")
    assert ag["n_samples"] == 1 and ag["exact_agreement"] == 0.0  # blind: A vs B
    assert store.current_labels("hm")[("hm", "s0000")]["bo"].answer == "A"  # the current label is still the latest


def test_retract_and_unmark_hard(store, tmp_path):
    # A reviewer retracts one label (an append-only undo event with a reason); hard marks can be removed.
    store.add_label("ana", "hm", "s0000", answer="AC")
    eid = store.add_label("ana", "hm", "s0000", answer="B")
    assert store.retract(eid, "cy", "clicked the wrong box") == ("hm", "s0000")
    assert store.current_labels("hm")[("hm", "s0000")]["ana"].answer == "AC"
    last = store.events()[-1]
    assert (last.kind, last.retracts, last.annotator, last.note) == ("undo", eid, "cy", "retract: clicked the wrong box")
    with pytest.raises(StoreError, match="already retracted"):
        store.retract(eid, "cy")
    with pytest.raises(StoreError, match="not a label event"):
        store.retract(last.event_id, "cy")
    (tmp_path / "h.txt").write_text("s0001\ns0002\n")
    store.import_hard_cases(tmp_path / "h.txt", "hm")
    assert store.unmark_hard("hm", ["s0001", "nope"]) == 1
    assert [k.sample_id for k in store.queue("hard", "hm")] == ["s0002"]


def test_datasets_are_identified_by_content(tmp_path, handmade_dataset):
    # Two folders named "ds" with other images: the second is refused under the same name and
    # registers under another; a copy of the first (same content elsewhere) is accepted.
    import shutil

    from conftest import make_sample, solid
    from labkit.data import save_split

    st = AnnotationStore(tmp_path / "id.sqlite")
    st.register_split(handmade_dataset, "train")
    other = tmp_path / "other" / "ds"
    save_split([make_sample(i, "A", original=solid("black")) for i in range(2)], other, "train")
    with pytest.raises(StoreError, match=r"dataset name 'ds' \(split 'train'\) in this store belongs to other content"):
        st.register_split(other, "train")
    assert len(st.samples("ds")) == 4                       # nothing of the other folder got in
    assert st.register_split(other, "train", dataset="ds-other") == 2
    copy = tmp_path / "copy" / "ds"
    shutil.copytree(handmade_dataset, copy)
    assert st.register_split(copy, "train") == 0
    fps = st.fingerprints()
    assert fps[("ds", "train")] != fps[("ds-other", "train")] and len(fps[("ds", "train")]) == 16
