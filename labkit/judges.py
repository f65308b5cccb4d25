"""Judges behind one interface: a local transformers model, or any OpenAI-compatible endpoint.

A *judge* answers chat messages that show images. Annotation (captions, CoT), evaluation of API
models (``labkit evaluate --judge openai:gpt-4o``) and the app use it the same way::

    judge = make_judge("openai:gpt-4o")            # OPENAI_BASE_URL / OPENAI_API_KEY from the env
    judge = make_judge("openai:qwen-vl-max", base_url="https://.../compatible-mode/v1", api_key=...)
    judge = make_judge("local:data/models/small-internvl")        # labkit.models.load
    reply = judge.complete([user_message(5, prompt)], images)     # -> JudgeReply
    replies = judge.complete_many([(messages, images), ...], concurrency=4)

Messages follow the chat format; a user turn's ``{"type": "image"}`` placeholders are filled
with ``images`` in order (with no placeholder, the images go before the first user text).

OpenAI-compatible judges (`OpenAIJudge`, the ``openai`` package; GPT-4o, Qwen-VL-Max/Plus in
compatible mode, a vLLM server): images travel as base64 PNG data URLs; 429, 408, 409 and 5xx
replies and connection errors are retried with exponential backoff (a ``Retry-After`` header
wins); every reply is cached on disk under a hash of the request (base URL, model, messages,
image bytes, parameters), so a repeat sends nothing; token counts come from the reply's
``usage`` and the cost from `PRICES` (USD per million tokens, overridable; a model without a
price gets ``cost_usd=None``, never a guess).

Local judges (`LocalJudge`) load the model once, generate greedily in batches with
`labkit.infer.generate_responses`, and cost nothing.

The shared interface (`Judge`, `JudgeReply`, `JudgeStats`, `JudgeError`, `PRICES`, the reply
cache) lives in `labkit.judge_base`; its public names are importable from here too.
"""
from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Sequence

from labkit.infer import DEFAULT_MAX_NEW_TOKENS, generate_responses
from labkit.judge_base import (  # noqa: F401  (re-exported: the judges' public interface)
    DEFAULT_CACHE_DIR, PRICES, RETRY_STATUSES, Judge, JudgeError, JudgeReply, JudgeStats, _body, connection_cause,
    data_url, fill_images, flatten_text, image_png,
)
from labkit.models import load

# openai and PIL are imported where they are used: `labkit evaluate` without a judge never needs them.


class OpenAIJudge(Judge):
    """Any OpenAI-compatible chat-completions endpoint (see the module docstring)."""

    kind = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 cache_dir: str | os.PathLike | None = "default", concurrency: int = 4, max_retries: int = 5,
                 backoff_base: float = 1.0, backoff_max: float = 60.0, timeout: float = 120.0,
                 temperature: float = 0.0, max_tokens: int = 1024, prices: dict | None = None, **extra):
        if cache_dir == "default":
            cache_dir = os.environ.get("LABKIT_JUDGE_CACHE", DEFAULT_CACHE_DIR)
        super().__init__(model, cache_dir=cache_dir, concurrency=concurrency, prices=prices)
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if not self.base_url:
                raise ValueError("openai judge: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible endpoint) "
                                 "or pass api_key=/base_url=")
            api_key = "not-needed"  # local servers (vLLM) accept any key
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra = extra
        from openai import OpenAI

        # The client's own retries are off: ours count requests, honour Retry-After and back off.
        self.client = OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def _endpoint(self) -> str:
        return self.base_url or "https://api.openai.com/v1"

    def params(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.extra}

    def _delay(self, attempt: int, headers) -> float:
        retry_after = None
        if headers is not None:
            ms = headers.get("retry-after-ms")
            s = headers.get("retry-after")
            try:
                if ms is not None:
                    retry_after = float(ms) / 1000
                elif s is not None:
                    retry_after = float(s)
            except ValueError:
                from email.utils import parsedate_to_datetime

                try:
                    retry_after = max(0.0, parsedate_to_datetime(s).timestamp() - time.time())
                except (TypeError, ValueError):
                    retry_after = None
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        # Exponential backoff with jitter so concurrent workers don't retry in lockstep.
        return min(self.backoff_max, self.backoff_base * (2 ** attempt)) * (0.5 + random.random() / 2)

    def _send(self, messages: list[dict], pngs: Sequence[bytes]) -> JudgeReply:
        import openai

        wire = fill_images(messages, [data_url(p) for p in pngs])
        attempts = 0
        while True:
            attempts += 1
            try:
                resp = self.client.chat.completions.create(model=self.model, messages=wire, **self.params())
            except openai.APIStatusError as exc:
                retryable = exc.status_code in RETRY_STATUSES or exc.status_code >= 500
                if not retryable or attempts > self.max_retries:
                    with self._lock:
                        self.stats.requests += attempts
                    raise JudgeError(f"{self.spec}: {self._endpoint()} answered HTTP {exc.status_code} after {attempts} "
                                     f"request(s): {_body(exc)}") from exc
                time.sleep(self._delay(attempts - 1, exc.response.headers))
                continue
            except openai.APIConnectionError as exc:
                if attempts > self.max_retries:
                    with self._lock:
                        self.stats.requests += attempts
                    raise JudgeError(f"{self.spec}: cannot reach {self._endpoint()} after {attempts} request(s): "
                                     f"{connection_cause(exc)}") from exc
                time.sleep(self._delay(attempts - 1, None))
                continue
            break
        if not resp.choices:
            raise JudgeError(f"{self.spec}: the reply has no choices")
        text = resp.choices[0].message.content or ""
        usage = resp.usage
        pt = getattr(usage, "prompt_tokens", None) if usage else None
        ct = getattr(usage, "completion_tokens", None) if usage else None
        model = resp.model or self.model
        return JudgeReply(text=text, prompt_tokens=pt, completion_tokens=ct, cost_usd=self.cost(model, pt, ct),
                          cached=False, model=model, attempts=attempts)


class LocalJudge(Judge):
    """A local transformers model (`labkit.models.load`), greedy, batched; costs nothing."""

    kind = "local"

    def __init__(self, model: str, *, cache_dir: str | os.PathLike | None = None, batch_size: int = 8,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, device=None, dtype=None, trust_remote_code: bool = False,
                 concurrency: int = 1, **gen):
        super().__init__(str(model), cache_dir=cache_dir, concurrency=concurrency)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device, self.dtype, self.trust_remote_code = device, dtype, trust_remote_code
        self.gen = gen
        self._loaded = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()

    def params(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, **self.gen}

    def _endpoint(self) -> str:
        return str(Path(self.model).resolve()) if Path(self.model).exists() else self.model

    def loaded(self):
        """``(model, processor)``, loaded on first use."""
        with self._load_lock:
            if self._loaded is None:
                self._loaded = load(self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code)
            return self._loaded

    def cost(self, model, prompt_tokens, completion_tokens) -> float:
        return 0.0

    def _send(self, messages, pngs):
        return self._send_many([(messages, pngs)], 1, False)[0]

    def _send_many(self, items, concurrency, progress, on_reply=None):
        model, processor = self.loaded()
        with self._gen_lock:  # one generate at a time: the model and processor are shared
            return self._generate(model, processor, items, progress)

    def _generate(self, model, processor, items, progress):
        from PIL import Image

        batch = [([Image.open(io.BytesIO(p)).convert("RGB") for p in pngs], flatten_text(messages)) for messages, pngs in items]
        texts = generate_responses(model, processor, batch, batch_size=self.batch_size,
                                   max_new_tokens=self.max_new_tokens, progress=progress, **self.gen)
        tok = getattr(processor, "tokenizer", processor)
        return [JudgeReply(text=t, prompt_tokens=None, completion_tokens=len(tok(t, add_special_tokens=False)["input_ids"]),
                           cost_usd=0.0, model=self.model, attempts=1) for t in texts]


JUDGE_KINDS = {"openai": OpenAIJudge, "local": LocalJudge}


def make_judge(spec: str | Judge, **opts) -> Judge:
    """A judge from ``openai:MODEL`` or ``local:PATH_OR_HUB_ID`` (options go to its class).

    A `Judge` passes through unchanged.
    """
    if isinstance(spec, Judge):
        return spec
    kind, sep, name = str(spec).partition(":")
    if not sep or not name or kind not in JUDGE_KINDS:
        raise ValueError(f"unknown judge {spec!r}; expected openai:MODEL (e.g. openai:gpt-4o) or local:PATH_OR_HUB_ID")
    return JUDGE_KINDS[kind](name, **opts)


def load_prices(path: str | os.PathLike) -> dict:
    """Prices from a JSON file ``{"model": {"input": usd_per_1M, "output": usd_per_1M}}``."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of model -> {{input, output}} prices")
    for name, p in data.items():
        if not (isinstance(p, dict) and {"input", "output"} <= set(p)):
            raise ValueError(f"{path}: price of {name!r} needs 'input' and 'output' (USD per 1M tokens)")
    return data
