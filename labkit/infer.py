"""Text generation with the lab's vision-language models, and the resumable predictions file.

Used by evaluation (`labkit.evaluate`), screening (`labkit.screen`), local judges
(`labkit.judges.LocalJudge`), training callbacks and the app; it depends on none of them.

- `generate_responses(model, processor, items, ...)`: ``items`` is a sequence of
  ``(images, prompt)`` pairs, ``images`` a list of PIL images shown in order before the
  instruction (``prompt`` a text, or a ready user message such as
  `labkit.data.screening_message`). Prompts are rendered with the model's chat template, padded
  on the left and generated in batches; replies are decoded with special tokens skipped
  (``<think>`` and ``<answer>`` tags survive: they are non-special tokens in the lab's models).
  ``verdicts=True`` also returns the model's P(ok) at its verdict about each candidate.
- `stream_response(model, processor, images, prompt_text, ...)`: yields the reply *as it grows*
  (each item is the full text so far, not a delta), for the app.
- `open_predictions(out_dir, settings, keys)`: prepares a run folder whose ``predictions.jsonl``
  a rerun continues (refusing one written with other settings).

Example::

    from labkit.models import load
    from labkit.infer import generate_responses
    model, processor = load("data/models/small-internvl")
    replies = generate_responses(model, processor, [(images, "Which candidates pass?")], batch_size=8)
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator, Sequence

from labkit.conversions import user_message
from labkit.jsonl import read_by_id, write_atomic
from labkit.verdicts import verdict_probs, verdict_token_ids

# torch, transformers and tqdm are imported inside the functions that use them: importing this
# module (the CLI, the judges, the app's start-up) must stay fast.

DEFAULT_MAX_NEW_TOKENS = 256


# ----------------------------------------------------------------------------- generation

def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


def render_prompt(processor, n_images: int, prompt) -> str:
    """The chat-template text of one user turn + assistant header.

    ``prompt`` is the instruction text (the images come first, unlabelled) or a ready user
    message such as `labkit.data.screening_message` (images interleaved with their labels).
    """
    message = prompt if isinstance(prompt, dict) else user_message(n_images, prompt)
    return processor.apply_chat_template([message], add_generation_prompt=True, tokenize=False)


def _encode(model, processor, items: Sequence[tuple[list, str | dict]]):
    """Processor inputs for a batch of (images, prompt) pairs, left padded, on the model's device."""
    import torch

    texts = [render_prompt(processor, len(images), prompt) for images, prompt in items]
    images = [list(images) for images, _ in items]
    tok = _tokenizer(processor)
    tok.padding_side = "left"  # generation continues from the right end of every row
    kwargs = dict(text=texts, padding=True, return_tensors="pt")
    if any(images):
        kwargs["images"] = images
    inputs = processor(**kwargs)
    out = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(model.device)
            if value.is_floating_point():
                value = value.to(model.dtype)
        out[key] = value
    return out


def _generation_kwargs(processor, max_new_tokens, do_sample, temperature, top_k, top_p, extra) -> dict:
    tok = _tokenizer(processor)
    gen = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=tok.pad_token_id)
    if tok.eos_token_id is not None:
        gen["eos_token_id"] = tok.eos_token_id
    if do_sample:
        gen["temperature"] = temperature
        # 0 / None: no top-k cut (transformers' default of 50 would silently apply otherwise).
        gen["top_k"] = top_k if top_k else 0
        if top_p is not None:
            gen["top_p"] = top_p
    gen.update(extra)
    return gen


def generate_responses(
    model,
    processor,
    items: Sequence[tuple[list, str]],
    *,
    batch_size: int = 8,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    progress: bool = True,
    verdicts: bool = False,
    **gen,
) -> list[str] | tuple[list[str], list[list[float | None]]]:
    """Replies for ``items`` = [(images, prompt), ...], in order, generated in batches.

    Greedy by default; ``do_sample=True`` with temperature / top_k / top_p samples. Extra
    keyword arguments go to ``model.generate``. Decoding skips special tokens. With
    ``verdicts=True`` it returns ``(replies, p_ok)``: per reply the model's P(ok) at its verdict
    about each of A-D (`labkit.verdicts.verdict_probs`; None where it wrote no ``L: ok/no``).
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    items = list(items)
    gen_kwargs = _generation_kwargs(processor, max_new_tokens, do_sample, temperature, top_k, top_p, gen)
    tok = _tokenizer(processor)
    ids = verdict_token_ids(tok) if verdicts else None
    if ids is not None:
        gen_kwargs.update(output_logits=True, return_dict_in_generate=True)
    replies: list[str] = []
    p_ok: list[list[float | None]] = []
    bar = tqdm(total=len(items), desc="generate", unit="sample", disable=not progress)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        inputs = _encode(model, processor, chunk)
        with torch.inference_mode():
            out = model.generate(**inputs, **gen_kwargs)
        sequences = out.sequences if ids is not None else out
        new_tokens = sequences[:, inputs["input_ids"].shape[1]:]
        replies.extend(tok.batch_decode(new_tokens, skip_special_tokens=True))
        if verdicts:
            if ids is None:  # the tokenizer has no one-token ok/no/letters: no verdict scores
                p_ok.extend([[None] * 4 for _ in chunk])
            else:
                logits = torch.stack(out.logits, 1)  # [batch, new tokens, vocab]
                p_ok.extend(verdict_probs(new_tokens[b].tolist(), logits[b], ids) for b in range(len(chunk)))
        bar.update(len(chunk))
    bar.close()
    return (replies, p_ok) if verdicts else replies


def stream_response(model, processor, images: list, prompt_text: str, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, **gen) -> Iterator[str]:
    """Yield the reply as it grows: each item is the whole text generated so far.

    Generation runs in a background thread feeding a `TextIteratorStreamer`; special tokens are
    skipped, the think/answer tags are kept. The last item is the complete reply.
    """
    import torch
    from transformers import TextIteratorStreamer

    inputs = _encode(model, processor, [(images, prompt_text)])
    streamer = TextIteratorStreamer(_tokenizer(processor), skip_prompt=True, skip_special_tokens=True)
    gen_kwargs = _generation_kwargs(processor, max_new_tokens, do_sample, temperature, top_k, top_p, gen)
    errors: list[BaseException] = []

    def work():
        try:
            with torch.inference_mode():
                model.generate(**inputs, **gen_kwargs, streamer=streamer)
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text = ""
    for delta in streamer:
        text += delta
        yield text
    thread.join()
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------- resumable predictions

def open_predictions(out_dir, settings: dict, keys: Sequence[str]) -> tuple[Path, dict[str, dict]]:
    """Prepare ``out_dir`` for an evaluation run that may resume an interrupted one.

    Refuses a folder whose ``run.json`` was written with other ``keys`` settings (mixing runs
    would corrupt the score), records ``settings``, and returns the predictions path and the
    complete predictions already there by id. The file is rewritten without a line cut by an
    interruption, so appends start on a fresh line.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / "predictions.jsonl"
    run_path = out_dir / "run.json"
    if run_path.exists() and pred_path.exists():
        before = json.loads(run_path.read_text())
        diff = {k: (before.get(k), settings.get(k)) for k in keys if before.get(k) != settings.get(k)}
        if diff:
            raise ValueError(
                f"{out_dir} holds predictions made with other settings {diff} (old, new); "
                "use another --out folder or delete it"
            )
    run_path.write_text(json.dumps(settings, indent=2) + "\n")
    done = read_by_id(pred_path)
    write_atomic(pred_path, list(done.values()))
    return pred_path, done
