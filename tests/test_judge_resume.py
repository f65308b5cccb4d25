"""Judge runs that stop half-way (`labkit annotate` through the CLI, a judge server in its own
process): every reply is cached as it arrives, so a resumed run asks for no reply twice, counted
at the server; an unreachable judge is reported with its cause. `labkit evaluate` takes the same
endpoint options as `labkit annotate`."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(__file__).resolve().parent / "chat_server.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "NO_KEY": ""}


def _default_sigint() -> None:
    # A child inherits an ignored SIGINT (e.g. pytest started as a background job of a
    # non-interactive shell), and Python then installs no KeyboardInterrupt handler: give the
    # children the default disposition, so Ctrl-C reaches them as it would from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_server(log: Path, port: int = 0, *extra) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), "--log", str(log), *extra],
                            stdout=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint)
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)  # a loaded machine can be slow to deliver and handle the signal
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def answered(log: Path) -> list[str]:
    """The request bodies (sha256) the server answered, over every server process."""
    return [json.loads(line)["sha"] for line in log.read_text().splitlines()] if log.exists() else []


def annotate_cmd(data: Path, out: Path, url: str, *extra) -> list[str]:
    return [sys.executable, "-m", "labkit", "annotate", "auto", "--judge", "openai:test-model", "--base-url", url,
            "--api-key-env", "NO_KEY", "--data", str(data), "--split", "train", "--out", str(out),
            "--cache-dir", str(out.parent / "cache"), "--request-retries", "0", "--limit", "4", "--quiet", *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_judge_killed_mid_run_then_resumed(synth_dataset, tmp_path):
    # 4 samples (distinct images, so distinct requests) x 2 requests. The judge dies when its 6th request arrives: the run stops incomplete and
    # says why; a judge restarted on the same address finishes the run, and no reply was asked for twice.
    log, out, port = tmp_path / "served.jsonl", tmp_path / "auto", free_port()
    server, url = start_server(log, port, "--die-after", "5")
    try:
        first = subprocess.run(annotate_cmd(synth_dataset, out, url, "--concurrency", "1"), capture_output=True,
                               text=True, env=ENV, timeout=600)
    finally:
        stop(server)   # it killed itself when the 6th request came
    assert first.returncode == 3, first.stdout + first.stderr[-2000:]
    assert "INCOMPLETE" in first.stdout and "judge error:" in first.stdout
    assert "connection refused" in first.stdout or "server closed the connection" in first.stdout
    assert len(answered(log)) == 5
    server, url = start_server(log, port)
    try:
        second = subprocess.run(annotate_cmd(synth_dataset, out, url, "--concurrency", "1"), capture_output=True,
                                text=True, env=ENV, timeout=600)
    finally:
        stop(server)
    assert second.returncode == 0, second.stdout + second.stderr[-2000:]
    shas = answered(log)
    assert len(shas) == 8 == len(set(shas))   # every request answered exactly once over both runs
    assert "samples 4/4" in second.stdout


def test_ctrl_c_mid_batch_keeps_the_replies_already_received(synth_dataset, tmp_path):
    # The client is interrupted while its batch of caption requests is on the wire (2 in flight, slow
    # judge). The replies that arrived are cached, so the resumed run asks for none of them again.
    log, out = tmp_path / "served.jsonl", tmp_path / "auto"
    server, url = start_server(log, 0, "--delay", "1.5")  # slow enough that the SIGINT lands mid-run
    try:
        client = subprocess.Popen(annotate_cmd(synth_dataset, out, url, "--concurrency", "2"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                  preexec_fn=_default_sigint)
        deadline = time.time() + 60
        while len(answered(log)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
        assert client.returncode == 130, err[-2000:]
        before = answered(log)
        assert 2 <= len(before) < 8
        second = subprocess.run(annotate_cmd(synth_dataset, out, url, "--concurrency", "2"), capture_output=True,
                                text=True, env=ENV, timeout=600)
    finally:
        stop(server)
    assert second.returncode == 0, second.stdout + second.stderr[-2000:]
    shas = answered(log)
    assert len(shas) == 8 == len(set(shas))


def test_unreachable_judge_names_the_cause(handmade_dataset, tmp_path):
    # Nothing listens on the port: evaluate (with annotate's endpoint options) fails in one line naming the cause.
    url = f"http://127.0.0.1:{free_port()}/v1"
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"test-model": {"input": 1.0, "output": 2.0}}))
    proc = subprocess.run([sys.executable, "-m", "labkit", "evaluate", "--judge", "openai:test-model", "--base-url", url,
                           "--api-key-env", "NO_KEY", "--prices", str(prices), "--request-retries", "0", "--no-cache",
                           "--data", str(handmade_dataset), "--split", "test", "--no-progress"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 1
    assert "connection refused" in proc.stderr and url in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("status", [401])
def test_http_error_names_status_and_body(handmade_dataset, tmp_path, status):
    # A judge that refuses the key: the message carries the HTTP status and the server's body.
    from chat_server import ChatServer

    with ChatServer(api_key="right") as server:
        proc = subprocess.run([sys.executable, "-m", "labkit", "evaluate", "--judge", "openai:test-model", "--base-url",
                               server.url, "--api-key-env", "WRONG_KEY", "--no-cache", "--data", str(handmade_dataset),
                               "--split", "test", "--no-progress"],
                              capture_output=True, text=True, env={**ENV, "WRONG_KEY": "wrong"}, timeout=600)
    assert proc.returncode == 1
    assert f"HTTP {status}" in proc.stderr and "bad API key" in proc.stderr
