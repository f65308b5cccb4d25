"""Judges (labkit.judges) against a real chat-completions server on 127.0.0.1 (tests/chat_server.py),
and a local tiny InternVL judge."""
from __future__ import annotations

import time

import pytest
from PIL import Image

from chat_server import IMAGE_TOKENS, ChatServer, images_of, prompt_text
from labkit.conversions import user_message
from labkit.judges import JudgeError, LocalJudge, OpenAIJudge, make_judge


def colours(*names, size=16):
    return [Image.new("RGB", (size, size), c) for c in names]


def judge_for(server, tmp_path, model="gpt-4o", **kw):
    kw.setdefault("backoff_base", 0.01)
    return make_judge(f"openai:{model}", base_url=server.url, api_key="sk-test", cache_dir=tmp_path / "cache", **kw)


def test_images_arrive_as_data_urls_in_placeholder_order(tmp_path):
    # Each {"type": "image"} placeholder becomes a PNG data URL carrying exactly that image.
    with ChatServer(replies=["fine"], api_key="sk-test") as server:
        judge = judge_for(server, tmp_path)
        reply = judge.complete([user_message(3, "Describe each image.")], colours("red", "lime", "blue"))
        assert reply.text == "fine" and server.count == 1
        body = server.requests[0]
        assert body["model"] == "gpt-4o" and body["temperature"] == 0.0
        parts = body["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "image_url", "text"]
        assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts[:3])
        got = [im.convert("RGB").getpixel((5, 5)) for im in images_of(body)]
        assert got == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
        assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_images_without_placeholders_open_the_user_turn(tmp_path):
    # Plain-text messages get the images in front of the text; a count mismatch is refused.
    with ChatServer(replies=["ok"]) as server:
        judge = judge_for(server, tmp_path)
        judge.complete([{"role": "system", "content": "be brief"}, {"role": "user", "content": "look"}], colours("red"))
        parts = server.requests[0]["messages"][1]["content"]
        assert [p["type"] for p in parts] == ["image_url", "text"] and parts[1]["text"] == "look"
        with pytest.raises(ValueError, match="2 image placeholder"):
            judge.complete([user_message(2, "x")], colours("red"))


def test_fails_twice_then_answers(tmp_path):
    # 429 (Retry-After 0.3 s) then 500, then an answer: 3 requests, the Retry-After wait honoured.
    with ChatServer(replies=["<answer>A</answer>"], fail_plan=[429, 500], retry_after=0.3) as server:
        judge = judge_for(server, tmp_path)
        t0 = time.perf_counter()
        reply = judge.complete([user_message(1, "which?")], colours("red"))
        elapsed = time.perf_counter() - t0
        assert reply.text == "<answer>A</answer>" and reply.attempts == 3
        assert server.count == 3 and server.statuses == [429, 500, 200]
        assert elapsed >= 0.3
        assert judge.stats.requests == 3


def test_retries_give_up_and_client_errors_do_not_retry(tmp_path):
    # Past max_retries the judge raises (max_retries + 1 requests); a 400 is not retried.
    with ChatServer(fail_plan=[503] * 10) as server:
        judge = judge_for(server, tmp_path, max_retries=2)
        with pytest.raises(JudgeError, match="HTTP 503 after 3 request"):
            judge.complete([user_message(0, "hi")], [])
        assert server.count == 3
    with ChatServer(fail_plan=[400]) as server:
        judge = judge_for(server, tmp_path)
        with pytest.raises(JudgeError, match="HTTP 400 after 1 request"):
            judge.complete([user_message(0, "hi")], [])
        assert server.count == 1


def test_cached_repeat_sends_nothing(tmp_path):
    # The same request again is answered from the disk cache (0 requests, cost 0); a changed
    # image or parameter is a new request. A new judge object on the same cache also hits it.
    with ChatServer(replies=["one", "two", "three"]) as server:
        judge = judge_for(server, tmp_path)
        msgs = [user_message(1, "describe")]
        first = judge.complete(msgs, colours("red"))
        again = judge.complete(msgs, colours("red"))
        assert server.count == 1 and again.cached and again.text == "one" and again.cost_usd == 0.0
        assert again.prompt_tokens == first.prompt_tokens
        assert judge.complete(msgs, colours("blue")).text == "two" and server.count == 2
        assert judge_for(server, tmp_path, temperature=0.7).complete(msgs, colours("red")).text == "three"
        fresh = judge_for(server, tmp_path)
        assert fresh.complete(msgs, colours("red")).cached and server.count == 3
        assert judge.stats.calls == 3 and judge.stats.cached == 1 and judge.stats.requests == 2


def test_token_and_cost_counts(tmp_path):
    # Tokens come from the reply's usage; cost = tokens x price per 1M; unknown model -> None.
    with ChatServer(replies=["a b c d"]) as server:
        reply = judge_for(server, tmp_path).complete([user_message(2, "five words in this prompt")], colours("red", "blue"))
        assert reply.prompt_tokens == 5 + 2 * IMAGE_TOKENS == 175 and reply.completion_tokens == 4
        assert reply.cost_usd == pytest.approx((175 * 2.50 + 4 * 10.00) / 1e6)
        unknown = judge_for(server, tmp_path, model="my-vllm-model")
        r = unknown.complete([user_message(0, "hi")], [])
        assert r.cost_usd is None and unknown.stats.cost_usd is None
        priced = judge_for(server, tmp_path, model="my-vllm-model", prices={"my-vllm-model": {"input": 1.0, "output": 2.0}},
                           temperature=0.1)
        r = priced.complete([user_message(0, "hi")], [])
        assert r.cost_usd == pytest.approx((1 * 1.0 + 4 * 2.0) / 1e6)


def test_complete_many_keeps_order_and_concurrency_limit(tmp_path):
    # 8 requests with concurrency 3 against a slow server: never more than 3 in flight, replies in order.
    with ChatServer(responder=lambda body: "echo " + prompt_text(body), delay=0.15) as server:
        judge = judge_for(server, tmp_path)
        replies = judge.complete_many([([user_message(0, f"q{i}")], []) for i in range(8)], concurrency=3, progress=False)
        assert [r.text for r in replies] == [f"echo q{i}" for i in range(8)]
        assert 2 <= server.max_in_flight <= 3


def test_environment_and_spec_errors(tmp_path, monkeypatch):
    # openai:MODEL reads OPENAI_BASE_URL / OPENAI_API_KEY; bad specs and missing keys are clear errors.
    with ChatServer(replies=["env ok"], api_key="sk-env") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        judge = make_judge("openai:gpt-4o-mini", cache_dir=None)
        assert isinstance(judge, OpenAIJudge) and judge.complete([user_message(0, "hi")], []).text == "env ok"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        make_judge("openai:gpt-4o")
    with pytest.raises(ValueError, match="unknown judge"):
        make_judge("gpt-4o")


@pytest.mark.slow
def test_local_judge_generates_in_batches(tiny_internvl):
    # local:PATH loads the model once and answers each request (batched), costing nothing.
    judge = make_judge(f"local:{tiny_internvl}", max_new_tokens=8, batch_size=2)
    assert isinstance(judge, LocalJudge)
    reqs = [([user_message(5, "Which are acceptable?")], colours("white", "red", "blue", "green", "gray", size=32))] * 3
    replies = judge.complete_many(reqs, progress=False)
    assert len(replies) == 3 and all(isinstance(r.text, str) for r in replies)
    assert all(r.cost_usd == 0.0 and r.completion_tokens <= 8 for r in replies)
    assert replies[0].text == replies[2].text          # greedy: same input, same reply
