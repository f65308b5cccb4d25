"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests (no mocks).

`ChatServer` runs `http.server.ThreadingHTTPServer` in a background thread and answers
``POST /v1/chat/completions`` the way the OpenAI API does (``choices[0].message.content``,
``usage`` with token counts). Use it with any OpenAI client pointed at ``server.url``::

    from tests.chat_server import ChatServer      # or `from chat_server import ChatServer`
    with ChatServer(replies=["<think>ok</think><answer>A</answer>"]) as server:
        judge = make_judge("openai:test-model", base_url=server.url, api_key="test")
        ...
        assert server.count == 1

Behaviour:
- ``replies``: a list of reply texts served in order (the last one repeats), or
  ``responder(body: dict) -> str``: computes each reply from the request body (the parsed JSON);
- ``fail_plan``: HTTP statuses returned by the first requests before answering, e.g.
  ``[429, 500]`` fails twice then answers (429s carry ``Retry-After: retry_after``);
- every request is recorded (``requests``: parsed bodies; ``headers``: lower-cased names; ``count``), including
  failed ones, so tests can count what was sent; `images_of(body)` decodes the data-URL images;
- ``usage``: prompt tokens = whitespace words of all text parts + ``IMAGE_TOKENS`` per image,
  completion tokens = whitespace words of the reply (deterministic, so costs can be checked);
- ``delay``: seconds to sleep before answering (to observe concurrency: ``max_in_flight``).
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

IMAGE_TOKENS = 85


def _text_parts(body: dict) -> list[str]:
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [part.get("text", "") for part in content if part.get("type") == "text"]
    return texts


def image_urls(body: dict) -> list[str]:
    """The image URLs of a request, in order."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls += [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    return urls


def images_of(body: dict):
    """The images of a request decoded from their ``data:image/...;base64,`` URLs (PIL)."""
    from PIL import Image

    out = []
    for url in image_urls(body):
        header, _, data = url.partition(",")
        if not (header.startswith("data:image/") and header.endswith(";base64")):
            raise ValueError(f"not a base64 image data URL: {url[:40]}...")
        out.append(Image.open(io.BytesIO(base64.b64decode(data))))
    return out


def prompt_text(body: dict) -> str:
    """All text parts of a request joined with newlines."""
    return "\n".join(_text_parts(body))


class ChatServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, replies: list[str] | None = None, responder: Callable[[dict], str] | None = None,
                 fail_plan: list[int] | None = None, retry_after: float | None = 0, delay: float = 0.0,
                 api_key: str | None = None, port: int = 0):
        if replies is None and responder is None:
            replies = ["<think>All four look fine.</think><answer>ABCD</answer>"]
        self.replies = list(replies or [])
        self.responder = responder
        self.fail_plan = list(fail_plan or [])
        self.retry_after = retry_after
        self.delay = delay
        self.api_key = api_key
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._served = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client (``.../v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far (failed ones included)."""
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.statuses.clear()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the protocol
    def _reply_for(self, body: dict) -> str:
        if self.responder is not None:
            return self.responder(body)
        with self._lock:
            i = min(self._served, len(self.replies) - 1)
            self._served += 1
        return self.replies[i]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model", "owned_by": "tests"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                    return
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(server.requests)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                status = 500
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                        status = 401
                        self._send(401, {"error": {"message": "bad API key", "type": "invalid_request_error"}})
                    elif n <= len(server.fail_plan):
                        status = server.fail_plan[n - 1]
                        headers = {}
                        if status == 429 and server.retry_after is not None:
                            headers["Retry-After"] = str(server.retry_after)
                        self._send(status, {"error": {"message": f"scripted failure {status}", "type": "server_error"}}, headers)
                    else:
                        status = 200
                        text = server._reply_for(body)
                        prompt_tokens = sum(len(t.split()) for t in _text_parts(body)) + IMAGE_TOKENS * len(image_urls(body))
                        completion_tokens = len(text.split())
                        self._send(200, {
                            "id": f"chatcmpl-{n}",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body.get("model", "unknown"),
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop", "logprobs": None}],
                            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                      "total_tokens": prompt_tokens + completion_tokens},
                        })
                finally:
                    with server._lock:
                        server.in_flight -= 1
                        server.statuses.append(status)

        return Handler


def main(argv=None) -> None:
    """Run a server as its own process (for tests that kill it):

        python tests/chat_server.py [--port P] [--delay S] [--die-after N] [--log FILE] [--reply TEXT]

    Prints its base URL on the first line of stdout. ``--log`` appends one JSON line per answered
    request (``{"sha": sha256 of the body, "n": request number}``), so counts survive the process.
    ``--die-after N``: the process exits abruptly (os._exit, no reply) when request N+1 arrives.
    """
    import argparse
    import hashlib
    import os
    import sys

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--die-after", type=int, default=None)
    p.add_argument("--log", default=None)
    p.add_argument("--reply", default="<think>All four look fine.</think><answer>ABCD</answer>")
    args = p.parse_args(argv)
    lock = threading.Lock()
    answered = [0]

    def responder(body: dict) -> str:
        with lock:
            if args.die_after is not None and answered[0] >= args.die_after:
                os._exit(0)  # killed mid-run: the request gets no reply, the next ones are refused
            answered[0] += 1
            if args.log:
                sha = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
                with open(args.log, "a") as fh:
                    fh.write(json.dumps({"sha": sha, "n": answered[0]}) + "\n")
        return args.reply

    ThreadingHTTPServer.allow_reuse_address = True
    server = ChatServer(responder=responder, delay=args.delay, port=args.port)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
