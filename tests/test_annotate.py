"""Annotation (labkit.annotate, `labkit annotate`): automatic, answer-driven and oracle CoT,
resumability, against a real chat-completions server on 127.0.0.1 (tests/chat_server.py)."""
from __future__ import annotations

import json
import re

import pytest

from chat_server import ChatServer, prompt_text
from labkit.annotate import AnnotateConfig, annotate, extract_cot, oracle_annotation, read_journal
from labkit.conversions import convert
from labkit.data import load_split

CAPTIONS = "Original: a white box.\nA: red.\nB: blue.\nC: green.\nD: gray."


def auto_responder(body):
    """Captions for the caption prompt; for the reasoning prompt always answers A."""
    text = prompt_text(body)
    if "Describe each image briefly" in text:
        return CAPTIONS
    return "<think>A keeps the product; the others change it.</think><answer>A</answer>"


def cfg(**kw):
    kw.setdefault("progress", False)
    return AnnotateConfig(**kw)


def test_auto_captions_then_reasoning(handmade_dataset, tmp_path):
    # Each sample costs two requests: captions, then reasoning that quotes those captions.
    # Weak-label accuracy with the paper's metric: labels AC, B, N, ABCD vs "A" -> 2/4 = 50%.
    out = tmp_path / "auto"
    with ChatServer(responder=auto_responder) as server:
        summary = annotate("auto", handmade_dataset, "train", out, judge="openai:gpt-4o", base_url=server.url,
                           api_key="k", cache_dir=None, config=cfg(concurrency=2))
        assert server.count == 8
        reasoning = [prompt_text(b) for b in server.requests if "Your own descriptions" in prompt_text(b)]
        assert len(reasoning) == 4 and all(CAPTIONS in t for t in reasoning)
    assert summary["accuracy"] == pytest.approx(50.0) and summary["n_labelled"] == 4
    assert summary["requests_this_run"] == 8 and summary["cost_usd"] > 0
    assert summary["prompt_tokens"] > 0 and summary["completion_tokens"] == 4 * (12 + 8)   # words: captions 12, reasoning reply 8
    ds = load_split(out, "train")
    assert set(ds["caption"]) == {CAPTIONS}
    assert set(ds["cot"]) == {"A keeps the product; the others change it."}
    assert ds["answer"] == ["AC", "B", "N", "ABCD"]             # human labels are kept
    note = json.loads(ds[1]["meta"])["annotation"]
    assert note["answer"] == "A" and note["judge"] == "openai:gpt-4o" and note["requests"] == 2
    row = read_journal(out / "annotation" / "train" / "journal.jsonl")["s0000"]
    assert row["prompts"]["caption"].startswith("You are an expert") and row["usage"]["caption"]["requests"] == 1
    assert json.loads((out / "dataset.json").read_text())["parent"] == str(handmade_dataset.resolve())
    # The annotated split feeds SFT: the target is the judge's reasoning + the human answer.
    target = convert(ds, "sft")[0]["messages"][1]["content"][0]["text"]
    assert target == "<think>A keeps the product; the others change it.</think><answer>AC</answer>"


def test_resume_skips_done_items(handmade_dataset, tmp_path):
    # An interrupted run (here: --limit 2) resumes: only the missing samples are sent, with the
    # disk cache OFF, so it is the journal that saves the requests; a finished run sends nothing.
    out = tmp_path / "auto"
    with ChatServer(responder=auto_responder) as server:
        kw = dict(judge="openai:gpt-4o", base_url=server.url, api_key="k", cache_dir=None)
        first = annotate("auto", handmade_dataset, "train", out, config=cfg(limit=2), **kw)
        assert server.count == 4 and first["done"] == 2
        second = annotate("auto", handmade_dataset, "train", out, config=cfg(), **kw)
        assert server.count == 8 and second["new"] == 2 and second["done"] == 4
        third = annotate("auto", handmade_dataset, "train", out, config=cfg(), **kw)
        assert server.count == 8 and third["new"] == 0 and third["requests_this_run"] == 0
    assert len(load_split(out, "train")) == 4


def test_failed_samples_are_left_for_the_next_run(handmade_dataset, tmp_path):
    # A request that fails for good marks the run incomplete (no split written); a rerun finishes it.
    out = tmp_path / "auto"
    with ChatServer(responder=auto_responder, fail_plan=[500]) as server:
        kw = dict(judge="openai:gpt-4o", base_url=server.url, api_key="k", cache_dir=None, max_retries=0)
        first = annotate("auto", handmade_dataset, "train", out, config=cfg(concurrency=1), **kw)
        assert first["failed"] == 1 and first.get("incomplete") and first["done"] == 3
        assert not (out / "train.parquet").exists()
        second = annotate("auto", handmade_dataset, "train", out, config=cfg(), **kw)
        assert second["new"] == 1 and not second.get("incomplete")
        assert server.count == 1 + 2 * 4           # the failure, then 2 requests per sample exactly once
    assert len(load_split(out, "train")) == 4


def answer_driven_responder(body):
    """Wrong on the first try for AC (says A), always wrong for N (says A), right otherwise."""
    text = prompt_text(body)
    label = re.search(r"judged the acceptable image\(s\) to be: (\w+)", text).group(1)
    retry = "your previous reasoning" in text
    if label == "N" or (label == "AC" and not retry):
        return "<think>A looks right.</think><answer>A</answer>"
    return f"<think>Reasoning for {label}.</think><answer>{label}</answer>"


def test_answer_driven_rejects_and_retries(handmade_dataset, tmp_path):
    # Labels AC, B, N, ABCD with max_retries=2: AC passes on try 2, N never (3 tries), B and ABCD
    # on try 1 -> 7 attempts, 4 rejected (rejection rate 4/7), one sample never accepted.
    out = tmp_path / "ad"
    with ChatServer(responder=answer_driven_responder) as server:
        summary = annotate("answer-driven", handmade_dataset, "train", out, judge="openai:gpt-4o",
                           base_url=server.url, api_key="k", cache_dir=tmp_path / "cache", config=cfg(max_retries=2))
        assert server.count == 7
        retries = [prompt_text(b) for b in server.requests if "your previous reasoning" in prompt_text(b)]
        assert any("Attempt 2: your previous reasoning reached A, which is not the reviewer's answer AC" in t for t in retries)
    assert summary["attempts"] == 7 and summary["rejected_attempts"] == 4
    assert summary["rejection_rate"] == pytest.approx(4 / 7)
    assert summary["accepted"] == 3 and summary["never_accepted"] == 1
    rows = {r["id"]: r for r in load_split(out, "train")}
    assert rows["s0000"]["cot"] == "Reasoning for AC." and rows["s0002"]["cot"] == ""   # rejected: no CoT
    assert json.loads(rows["s0002"]["meta"])["annotation"]["accepted"] is False
    dropped = annotate("answer-driven", handmade_dataset, "train", tmp_path / "ad2", judge="openai:gpt-4o",
                       base_url=server.url, api_key="k", cache_dir=tmp_path / "cache",
                       config=cfg(max_retries=2, drop_rejected=True))
    assert dropped["requests_this_run"] == 0 and dropped["cached_this_run"] == 7   # same requests: all cached
    assert load_split(tmp_path / "ad2", "train")["id"] == ["s0000", "s0001", "s0003"]


def test_answer_driven_needs_labels(synth_dataset, tmp_path):
    # Unlabelled samples cannot drive answer-driven CoT: a clear error, nothing sent.
    with ChatServer() as server:
        with pytest.raises(ValueError, match="needs human answers"):
            annotate("answer-driven", synth_dataset, "exploration", tmp_path / "x", judge="openai:m",
                     base_url=server.url, api_key="k", cache_dir=None, config=cfg())
        assert server.count == 0


def test_oracle_on_synthetic_and_handmade(synth_dataset, handmade_dataset, tmp_path):
    # Synthetic samples: the generator's own writer rebuilt from meta (caption identical to the
    # stored one, CoT ends with the answer); other samples: a template from the defect tags.
    ds = load_split(synth_dataset, "train")
    for s in ds.select(range(4)):
        cap, cot, source = oracle_annotation(s)
        assert source == "synth" and cap == s["caption"]
        assert cot.endswith(f"the answer is {s['answer']}.")
    cap, cot, source = oracle_annotation(load_split(handmade_dataset, "train")[0])
    assert source == "template" and cap == ""
    assert cot.startswith("I compare") and "B: the shadow does not agree with the light" in cot
    assert cot.endswith("The acceptable images are A and C, so the answer is AC.")
    summary = annotate("oracle", synth_dataset, "exploration", tmp_path / "oracle", config=cfg())
    assert summary["requests_this_run"] == 0 and summary["done"] == 4
    out = load_split(tmp_path / "oracle", "exploration")
    assert all(c.strip() for c in out["cot"]) and out["answer"] == [None] * 4   # truth stays in meta


def test_refuses_overwrite_and_changed_settings(handmade_dataset, tmp_path):
    # The source folder is never the output; a resumed folder must keep its run's settings.
    with pytest.raises(ValueError, match="NEW folder"):
        annotate("oracle", handmade_dataset, "train", handmade_dataset, config=cfg())
    annotate("oracle", handmade_dataset, "train", tmp_path / "o", config=cfg())
    with pytest.raises(ValueError, match="other settings"):
        annotate("oracle", handmade_dataset, "train", tmp_path / "o", config=cfg(layout="grid"))


def test_extract_cot():
    # The reasoning without tags: think content, else the text before the answer tag.
    assert extract_cot("<think> A ok </think><answer>A</answer>") == "A ok"
    assert extract_cot("A is fine.<answer>A</answer>") == "A is fine."
    assert extract_cot("no tags at all") == "no tags at all"


def test_cli_auto_and_oracle(handmade_dataset, tmp_path, monkeypatch, capsys):
    # `labkit annotate` end to end: env-configured endpoint, a cost line; oracle without a judge.
    from labkit.cli import main

    with ChatServer(responder=auto_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        code = main(["annotate", "auto", "--judge", "openai:gpt-4o", "--data", str(handmade_dataset), "--split", "test",
                     "--out", str(tmp_path / "cli"), "--concurrency", "3", "--no-cache", "--quiet"])
        assert code == 0 and server.count == 10
    text = capsys.readouterr().out
    assert "answer accuracy" in text and "cost $" in text and "wrote 5 samples" in text
    assert main(["annotate", "oracle", "--data", str(handmade_dataset), "--split", "test", "--out",
                 str(tmp_path / "cli-o"), "--quiet"]) == 0
    assert main(["annotate", "auto", "--data", str(handmade_dataset), "--split", "test", "--out", str(tmp_path / "x")]) == 1


@pytest.mark.slow
def test_auto_with_a_local_judge(tiny_internvl, handmade_dataset, tmp_path):
    # The same pipeline with a local tiny InternVL judge (random weights: any text, but it runs).
    summary = annotate("auto", handmade_dataset, "train", tmp_path / "local", judge=f"local:{tiny_internvl}",
                       max_new_tokens=8, config=cfg(limit=2))
    assert summary["done"] == 2 and summary["cost_usd"] == 0.0 and summary["completion_tokens"] > 0
    assert len(load_split(tmp_path / "local", "train")) == 2
