"""Batched generation, streaming, evaluation with the paper's metric, resume, judges, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from labkit.metrics import random_baseline


@pytest.fixture(scope="module")
def internvl(tiny_internvl):
    from labkit.models import load

    return load(tiny_internvl)


def _images(n, seed):
    colours = ["white", "red", "blue", "green", "gray", "orange", "purple"]
    return [Image.new("RGB", (40 + 8 * ((seed + k) % 4), 48), colours[(seed + k) % len(colours)]) for k in range(n)]


def test_batched_generation_matches_per_sample(internvl):
    # left padding is right: a batch mixing 5-image and 2-image prompts of different lengths
    # gives exactly the greedy replies of one-by-one generation
    from labkit.infer import generate_responses

    model, processor = internvl
    items = [(_images(5, 0), "Which pass?"), (_images(2, 1), "Grid: which pass? Answer briefly."),
             (_images(5, 2), "A longer question about the four candidates and the original."), (_images(2, 3), "Q")]
    batched = generate_responses(model, processor, items, batch_size=4, max_new_tokens=12, progress=False)
    single = [generate_responses(model, processor, [it], batch_size=1, max_new_tokens=12, progress=False)[0] for it in items]
    assert batched == single and len(batched) == 4
    with pytest.raises(ValueError, match="batch_size"):
        generate_responses(model, processor, items, batch_size=0)


def test_stream_yields_growing_text_ending_in_the_reply(internvl):
    # each streamed item extends the previous one; the last equals the non-streamed reply
    from labkit.infer import generate_responses, stream_response

    model, processor = internvl
    images = _images(5, 4)
    parts = list(stream_response(model, processor, images, "Which pass?", max_new_tokens=10))
    full = generate_responses(model, processor, [(images, "Which pass?")], max_new_tokens=10, progress=False)[0]
    assert parts and parts[-1] == full
    assert all(b.startswith(a) for a, b in zip(parts, parts[1:]))


def test_evaluate_untrained_model_on_handmade_split(internvl, handmade_dataset, tmp_path):
    # an untrained model writes no answer: all 5 samples wrong and unparsed, never a crash;
    # the random baseline is the paper's formula on the same labels (A, BD, N, C, ACD -> 32 %)
    from labkit.evaluate import evaluate

    out = tmp_path / "run"
    r = evaluate(internvl, handmade_dataset, "test", out_dir=out, max_new_tokens=6, batch_size=2, progress=False)
    assert r["n"] == 5 and r["unparsed"] == 5 and r["overall"] == 0.0
    assert r["random_baseline"] == pytest.approx(random_baseline(["A", "BD", "N", "C", "ACD"])) == pytest.approx(32.0)
    assert set(r["per_dimension"]) == {"normal", "appearance_deformation", "physical_shadow", "placement_layout",
                                       "extension_rationality"}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == ["s0010", "s0011", "s0012", "s0013", "s0014"]
    assert all(set(row) == {"id", "response", "prediction", "answer", "dimension", "correct", "p_ok"} for row in rows)
    assert all(row["prediction"] is None and row["correct"] is False for row in rows)
    # no "A: ok/no" verdict in an untrained reply: no verdict probability, so no AUC (not a fake 0.5)
    assert all(row["p_ok"] == [None] * 4 for row in rows)
    assert "auc" not in r and "top1" not in r
    saved = json.loads((out / "results.json").read_text())
    assert saved["n"] == 5 and saved["predictions_path"] == str(out / "predictions.jsonl")
    assert r["generated"] == 5 and r["samples_per_s"] > 0


class ScriptedJudge:
    """A judge (the `labkit.judges` interface) whose replies are fixed in advance, by sample order."""

    spec = "scripted:test"

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen = []

    def complete(self, messages, images):
        self.seen.append((messages, len(images)))
        return self.replies[len(self.seen) - 1]


def test_parsing_and_the_papers_metric_through_evaluate(handmade_dataset, tmp_path):
    # labels A, BD, N, C, ACD; replies: right letter, subset of the label, N for N,
    # a wrong letter, no answer at all -> 3 of 5 correct (60 %), 1 unparsed
    from labkit.evaluate import evaluate

    judge = ScriptedJudge(["<think>A ok</think><answer>A</answer>", "<answer>D</answer>", "<answer>N</answer>",
                           "<answer>B</answer>", "I cannot decide."])
    r = evaluate(None, handmade_dataset, judge=judge, out_dir=tmp_path / "j", progress=False, layout="grid")
    assert r["overall"] == pytest.approx(60.0) and r["unparsed"] == 1
    assert r["per_dimension"]["placement_layout"] == 0.0 and r["per_dimension"]["normal"] == 100.0
    # grid layout: the judge saw one user turn with 2 images (original + grid)
    assert all(n == 2 for _, n in judge.seen)
    assert judge.seen[0][0][0]["content"][-1]["text"].lstrip().startswith("You are an expert reviewer")


def test_resume_skips_done_ids_and_survives_a_cut_line(handmade_dataset, tmp_path):
    # a first run stops after 3 samples; a cut line is left at the end as by a crash;
    # the rerun generates only the 2 missing samples and the file ends with 5 valid lines
    from labkit.evaluate import evaluate

    out = tmp_path / "resume"
    replies = ["<answer>A</answer>", "<answer>B</answer>", "<answer>N</answer>", "<answer>C</answer>", "<answer>A</answer>"]
    first = evaluate(None, handmade_dataset, judge=ScriptedJudge(replies), out_dir=out, limit=3, progress=False)
    assert first["n"] == 3 and first["generated"] == 3
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"id": "s0013", "respo')
    second_judge = ScriptedJudge(replies[3:])
    second = evaluate(None, handmade_dataset, judge=second_judge, out_dir=out, progress=False)
    assert second["generated"] == 2 and second["resumed"] == 3 and len(second_judge.seen) == 2
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["s0010", "s0011", "s0012", "s0013", "s0014"]
    assert second["n"] == 5 and second["overall"] == pytest.approx(100.0)
    # other settings in the same folder are refused instead of mixed in
    with pytest.raises(ValueError, match="other settings"):
        evaluate(None, handmade_dataset, judge=ScriptedJudge(replies), out_dir=out, form="direct", progress=False)


def test_openai_judge_through_evaluate(handmade_dataset, tmp_path):
    # --judge openai:MODEL path: a real chat-completions server on 127.0.0.1; 5 requests
    # with 5 data-URL images each, token counts reported; a repeat is served from the cache
    from chat_server import ChatServer, images_of
    from labkit.evaluate import evaluate
    from labkit.judges import make_judge

    with ChatServer(replies=["<think>fine</think><answer>A</answer>"]) as server:
        def judge():
            return make_judge("openai:test-model", base_url=server.url, api_key="k", cache_dir=tmp_path / "cache")
        r = evaluate(None, handmade_dataset, judge=judge(), out_dir=tmp_path / "api", progress=False)
        assert server.count == 5 and r["n"] == 5
        assert all(len(images_of(body)) == 5 for body in server.requests)
        # labels A, BD, N, C, ACD: "A" is right for A and ACD -> 40 %
        assert r["overall"] == pytest.approx(40.0) and r["judge"]["prompt_tokens"] > 0
        evaluate(None, handmade_dataset, judge=judge(), out_dir=tmp_path / "api2", progress=False)
        assert server.count == 5


def test_cli_evaluate(tiny_internvl, handmade_dataset, tmp_path):
    # `labkit evaluate` in a subprocess: table with the random baseline, files written;
    # a missing dataset folder is a one-line error, not a traceback
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "labkit", "evaluate", "--model", str(tiny_internvl), "--data", str(handmade_dataset),
           "--split", "test", "--prompt", "direct", "--layout", "grid", "--batch-size", "4", "--out", str(out),
           "--max-new-tokens", "4", "--no-progress", "--name", "tiny"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "random" in proc.stdout and "32.00" in proc.stdout and "tiny" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["n"] == 5 and results["settings"]["layout"] == "grid" and results["settings"]["form"] == "direct"

    from labkit.cli import main

    assert main(["evaluate", "--model", str(tiny_internvl), "--data", str(tmp_path / "nope")]) == 1


def test_evaluate_on_a_synthetic_split(tiny_qwen, synth_dataset, tmp_path):
    # the procedural test split (20 samples): valid scores with the paper's metric, the random
    # baseline of exactly these labels, per-dimension counts summing to n, one line per sample
    from labkit.data import load_split
    from labkit.evaluate import evaluate
    from labkit.metrics import is_correct

    labels = load_split(synth_dataset, "test").select_columns(["answer"])["answer"]
    r = evaluate(tiny_qwen, synth_dataset, "test", form="direct", out_dir=tmp_path / "s", max_new_tokens=4,
                 progress=False)
    assert r["n"] == 20 and sum(r["n_per_dimension"].values()) == 20
    assert r["random_baseline"] == pytest.approx(random_baseline(labels))
    rows = [json.loads(line) for line in (tmp_path / "s" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and 0.0 <= r["overall"] <= 100.0
    assert r["overall"] == pytest.approx(100.0 * sum(is_correct(x["prediction"], x["answer"]) for x in rows) / 20)
    assert r["unparsed"] == sum(x["prediction"] is None for x in rows)
