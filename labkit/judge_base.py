"""The judge interface (`Judge`): replies, the on-disk reply cache, token and cost counts, concurrency.

A *judge* answers chat messages that show images; `labkit.judges` holds the concrete judges
(an OpenAI-compatible endpoint, a local model) and `make_judge`. This module holds what they
share: `Judge` (``complete`` / ``complete_many`` with a cache keyed on the request and a
thread pool), `JudgeReply`, `JudgeStats`, `JudgeError`, the price table `PRICES` (USD per
million tokens), and the message helpers (`fill_images` for the OpenAI wire format,
`flatten_text` for a single-turn local model). It has no third-party imports at module level:
the CLI imports it on every command for `JudgeError`. Use it through `labkit.judges`::

    from labkit.judges import make_judge
    judge = make_judge("openai:gpt-4o")
"""
from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

# USD per 1M tokens (input, output), as published by OpenAI in 2025. Check your provider's
# current prices and pass ``prices=`` (or ``labkit annotate --prices FILE``) to override or add.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}
DEFAULT_CACHE_DIR = "data/judge_cache"
RETRY_STATUSES = {408, 409, 429}


class JudgeError(RuntimeError):
    """A judge request that failed for good (after retries, or a non-retryable error)."""


def connection_cause(exc: BaseException) -> str:
    """Why a connection failed, from the innermost cause (e.g. ``connection refused ([Errno 111] ...)``)."""
    chain, seen = [], set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    root = chain[-1]
    text = " ".join(str(x) for x in chain).lower()
    for needle, label in (("refused", "connection refused"), ("timed out", "timed out"), ("timeout", "timed out"),
                          ("name or service not known", "unknown host"), ("nodename nor servname", "unknown host"),
                          ("reset by peer", "connection reset"), ("disconnected", "server closed the connection"),
                          ("certificate", "TLS certificate problem")):
        if needle in text:
            return f"{label} ({type(root).__name__}: {root})"
    return f"{type(root).__name__}: {root}"


def _body(exc, limit: int = 500) -> str:
    """The response body of an HTTP error, shortened."""
    try:
        body = exc.response.text
    except Exception:  # no response object, or an unreadable body
        body = getattr(exc, "message", str(exc))
    body = " ".join(str(body).split())
    return body[:limit] + ("..." if len(body) > limit else "")


@dataclass
class JudgeReply:
    """One reply. ``cost_usd`` is what this call cost (0.0 when served from the cache; None when
    the model has no price); token counts are those of the reply (also when cached)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    model: str = ""
    attempts: int = 0  # HTTP requests sent for this reply (0 when cached)


@dataclass
class JudgeStats:
    """Totals over a judge's lifetime (thread-safe updates through `Judge._record`)."""

    calls: int = 0
    cached: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def image_png(image) -> bytes:
    """PNG bytes of an image (PIL, bytes, path or a datasets dict)."""
    from labkit.data import open_image  # PIL: lazy, the CLI imports this module on every command

    buf = io.BytesIO()
    open_image(image).save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fill_images(messages: list[dict], urls: Sequence[str]) -> list[dict]:
    """Messages in the OpenAI wire format: ``{"type": "image"}`` placeholders become
    ``image_url`` parts with ``urls`` in order (no placeholder: the images open the first user turn)."""
    messages = copy.deepcopy(list(messages))
    placeholders = [(i, j) for i, m in enumerate(messages) if isinstance(m.get("content"), list)
                    for j, part in enumerate(m["content"]) if part.get("type") == "image"]
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    if placeholders:
        if len(placeholders) != len(parts):
            raise ValueError(f"the messages have {len(placeholders)} image placeholder(s) but {len(parts)} image(s) were given")
        for (i, j), part in zip(placeholders, parts):
            messages[i]["content"][j] = part
        return messages
    if parts:
        for m in messages:
            if m.get("role") == "user":
                content = m["content"]
                m["content"] = parts + ([{"type": "text", "text": content}] if isinstance(content, str) else list(content))
                return messages
        raise ValueError("images given but no user message to attach them to")
    return messages


def flatten_text(messages: list[dict]) -> str:
    """The text of the last user turn (what a single-turn local model is prompted with)."""
    for m in reversed(list(messages)):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
    raise ValueError("no user message")


class Judge:
    """The interface. Subclasses implement `_send` (one uncached request) and may batch in `_send_many`."""

    kind = "judge"

    def __init__(self, model: str, cache_dir: str | os.PathLike | None = None, concurrency: int = 4,
                 prices: dict | None = None):
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.concurrency = max(1, int(concurrency))
        self.prices = dict(PRICES)
        for name, price in (prices or {}).items():
            self.prices[name] = (float(price["input"]), float(price["output"])) if isinstance(price, dict) else tuple(map(float, price))
        self.stats = JudgeStats()
        self.errors: list[str] = []  # distinct messages of failed requests (first 10), for run summaries
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        """``kind:model``, the string `make_judge` takes (also the judge's name in reports)."""
        return f"{self.kind}:{self.model}"

    name = spec

    def params(self) -> dict:
        """Request parameters that change the reply (part of the cache key)."""
        return {}

    # -- cost, cache, stats
    def cost(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        price = self.prices.get(model) or self.prices.get(self.model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6

    def cache_key(self, messages: list[dict], pngs: Sequence[bytes]) -> str:
        payload = {"judge": self.kind, "endpoint": self._endpoint(), "model": self.model, "params": self.params(),
                   "messages": messages, "images": [hashlib.sha256(p).hexdigest() for p in pngs]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def _endpoint(self) -> str:
        return ""

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None

    def _cache_get(self, key: str) -> JudgeReply | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return None  # a torn file (crash while writing is prevented by os.replace, but be safe)
        return JudgeReply(text=data["text"], prompt_tokens=data.get("prompt_tokens"),
                          completion_tokens=data.get("completion_tokens"),
                          cost_usd=0.0 if data.get("cost_usd") is not None else None,
                          cached=True, model=data.get("model", self.model), attempts=0)

    def _cache_put(self, key: str, reply: JudgeReply) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({**asdict(reply), "cached": False}))
        os.replace(tmp, path)  # atomic: readers see the old state or the whole reply

    def _record(self, reply: JudgeReply) -> None:
        with self._lock:
            s = self.stats
            s.calls += 1
            s.cached += int(reply.cached)
            s.requests += reply.attempts
            s.prompt_tokens += reply.prompt_tokens or 0
            s.completion_tokens += reply.completion_tokens or 0
            if reply.cost_usd is None and not reply.cached:
                s.cost_usd = None  # one unpriced reply makes the total unknown
            elif s.cost_usd is not None:
                s.cost_usd += reply.cost_usd or 0.0

    # -- the public interface
    def complete(self, messages: list[dict], images: Sequence = ()) -> JudgeReply:
        """One reply for ``messages`` showing ``images`` (cached replies send nothing)."""
        return self.complete_many([(messages, images)], concurrency=1, progress=False)[0]

    def complete_many(self, requests: Sequence[tuple[list[dict], Sequence]], concurrency: int | None = None,
                      progress: bool = True, return_exceptions: bool = False) -> list[JudgeReply | BaseException]:
        """Replies for ``[(messages, images), ...]`` in order; at most ``concurrency`` in flight.

        With ``return_exceptions`` a failed request gives its exception in place of a reply;
        otherwise the first failure is raised after the running requests finish.
        """
        prepared = []
        for messages, images in requests:
            pngs = [image_png(im) for im in images]
            prepared.append((list(messages), pngs, self.cache_key(list(messages), pngs)))
        results: list[Any] = [None] * len(prepared)
        todo = []
        for i, (messages, pngs, key) in enumerate(prepared):
            hit = self._cache_get(key)
            if hit is not None:
                self._record(hit)
                results[i] = hit
            else:
                todo.append(i)
        if todo:
            stored = set()

            def arrived(j: int, reply) -> None:
                # Cached the moment it arrives: an interrupted run (Ctrl-C, a dead judge) keeps every reply it got.
                i = todo[j]
                if i in stored:
                    return
                stored.add(i)
                if isinstance(reply, JudgeReply):
                    self._cache_put(prepared[i][2], reply)
                    self._record(reply)
                elif isinstance(reply, BaseException) and str(reply) not in self.errors and len(self.errors) < 10:
                    self.errors.append(str(reply))
                results[i] = reply

            sent = self._send_many([(prepared[i][0], prepared[i][1]) for i in todo], concurrency or self.concurrency,
                                   progress, on_reply=arrived)
            for j, reply in enumerate(sent):
                arrived(j, reply)
        if not return_exceptions:
            for r in results:
                if isinstance(r, BaseException):
                    raise r
        return results

    def _send(self, messages: list[dict], pngs: Sequence[bytes]) -> JudgeReply:
        raise NotImplementedError

    def _send_many(self, items, concurrency: int, progress: bool, on_reply=None) -> list:
        """Replies (or exceptions) for ``items`` in order; ``on_reply(index, reply)`` is called as each arrives."""
        from tqdm.auto import tqdm

        def one(item):
            try:
                return self._send(*item)
            except Exception as exc:  # returned, so one failure doesn't lose the others' replies
                return exc

        bar = tqdm(total=len(items), desc=f"judge {self.model}", unit="req", disable=not progress or len(items) < 2)
        results = [None] * len(items)
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        futures = {pool.submit(one, item): i for i, item in enumerate(items)}

        def take(fut):
            results[futures[fut]] = fut.result()
            if on_reply is not None:
                on_reply(futures[fut], results[futures[fut]])
            bar.update(1)

        try:
            for fut in as_completed(futures):
                take(fut)
        except BaseException:
            # Ctrl-C: start nothing new, but keep (cache) the replies of requests already on the wire.
            for fut in futures:
                fut.cancel()
            for fut in futures:
                if not fut.cancelled() and results[futures[fut]] is None:
                    take(fut)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return results
