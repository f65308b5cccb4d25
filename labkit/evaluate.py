"""Batched generation and evaluation with the paper's metric.

Generation (used by evaluation, annotation, training callbacks and the app):

- `generate_responses(model, processor, items, ...)`: ``items`` is a sequence of
  ``(images, prompt_text)`` pairs, ``images`` a list of PIL images shown in order before the
  instruction. Prompts are rendered with the model's chat template, padded on the left and
  generated in batches; replies are decoded with special tokens skipped (``<think>`` and
  ``<answer>`` tags survive: they are non-special tokens in the lab's models).
- `stream_response(model, processor, images, prompt_text, ...)`: yields the reply *as it grows*
  (each item is the full text so far, not a delta), for the Gradio app.

Evaluation:

- `evaluate(model_or_path, data_dir, split="test", ...)`: the `labkit.metrics.score` dict (overall
  and per-dimension percent, the random baseline of the same samples, ``unparsed``) plus
  ``wall_s``, ``samples_per_s`` and ``predictions_path``. With ``out_dir`` it writes
  ``predictions.jsonl`` (one line per sample: id, response, prediction, answer, dimension,
  correct), ``results.json`` and ``run.json`` (the settings); a rerun in the same folder skips the
  ids already predicted, so an interrupted evaluation continues where it stopped.

Run ``labkit evaluate --model data/models/small-internvl --data data/synth --out runs/eval``.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from labkit.metrics import LETTERS, candidate_auc, is_correct, parse_answer, score

DEFAULT_MAX_NEW_TOKENS = 256


# ----------------------------------------------------------------------------- generation

def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


def render_prompt(processor, n_images: int, prompt) -> str:
    """The chat-template text of one user turn + assistant header.

    ``prompt`` is the instruction text (the images come first, unlabelled) or a ready user
    message such as `labkit.conversions.screening_message` (images interleaved with their labels).
    """
    from labkit.conversions import user_message

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

    from labkit.verdicts import verdict_probs, verdict_token_ids

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


# ----------------------------------------------------------------------------- evaluation

# The settings that must match for a resumed run to mix with earlier predictions.
RESUME_KEYS = ("model", "data", "split", "form", "layout", "variant", "image_size", "prompt", "max_new_tokens",
               "do_sample", "temperature", "top_k", "top_p", "judge", "swap_images")


def open_predictions(out_dir, settings: dict, keys=RESUME_KEYS) -> tuple[Path, dict[str, dict]]:
    """Prepare ``out_dir`` for an evaluation run that may resume an interrupted one.

    Refuses a folder whose ``run.json`` was written with other ``keys`` settings (mixing runs
    would corrupt the score), records ``settings``, and returns the predictions path and the
    complete predictions already there by id. The file is rewritten without a line cut by an
    interruption, so appends start on a fresh line.
    """
    from labkit.jsonl import read_by_id, write_atomic

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


def prediction_row(sample_id: str, response: str, answer: str, dimension: str | None,
                   p_ok: list[float | None] | None = None) -> dict:
    """One predictions.jsonl line: the parsed answer is None when the reply has none (unparsed).

    ``p_ok`` (kept when given): the model's P(ok) at its verdict about each candidate A-D.
    """

    prediction = parse_answer(response)
    row = {
        "id": sample_id,
        "response": response,
        "prediction": prediction,
        "answer": answer,
        "dimension": dimension,
        "correct": is_correct(prediction, answer),
    }
    if p_ok is not None:
        row["p_ok"] = p_ok
    return row


def verdict_auc(rows: list[dict], ds) -> dict | None:
    """`labkit.metrics.candidate_auc` of the rows' ``p_ok`` against the split's defect tags.

    None when no row has a verdict score or the split has no per-candidate tags. A candidate
    the reasoning gave no ``ok``/``no`` verdict scores 0.5 (undecided); their count is
    ``missing_verdicts``.
    """
    if "candidate_defects" not in ds.column_names or not any(v is not None for r in rows for v in (r.get("p_ok") or [])):
        return None  # no verdict anywhere (e.g. an untrained model): no AUC rather than a fake 0.5
    defects = ds.select_columns(["candidate_defects"])["candidate_defects"]
    if any(d is None for d in defects):
        return None
    scores, missing = [], 0
    for r in rows:
        p = r.get("p_ok") or [None] * 4
        missing += sum(v is None for v in p)
        scores.append([0.5 if v is None else v for v in p])
    out = candidate_auc(scores, defects)
    out["missing_verdicts"] = missing
    return out


def top1_score(rows: list[dict]) -> dict:
    """The score of a fixed decision rule on the model's own verdict probabilities: name the one
    candidate with the highest P(ok), never N (``overall``, ``per_dimension``, as `score`).

    Reported beside the generated answers, never instead of them. The metric punishes every wrong
    letter of a subset, so a model whose verdicts rank well can still score below random when it
    names every candidate it finds more likely acceptable than not (or none): this separates
    what the model sees from how its answer is decided. The CNN baseline answers by a rule of
    the same kind.
    """
    preds = []
    for r in rows:
        p = [0.5 if v is None else v for v in (r.get("p_ok") or [None] * 4)]
        preds.append(LETTERS[max(range(4), key=lambda k: p[k])])
    res = score(preds, [r["answer"] for r in rows], [r["dimension"] or "unknown" for r in rows])
    return {"rule": "highest P(ok), never N", "overall": res["overall"], "per_dimension": res["per_dimension"]}


def _judge_responses(judge, rows: list[dict]) -> list[str]:
    """Replies of a judge (`labkit.judges`: API or local model) for converted rows, in order.

    Requests of one batch go out together (the judge's concurrency limit applies); cached
    replies send nothing.
    """
    requests = [(row["prompt"], row["images"]) for row in rows]
    if hasattr(judge, "complete_many"):
        replies = judge.complete_many(requests, progress=False)
    else:
        replies = [judge.complete(messages, images) for messages, images in requests]
    return [(getattr(reply, "text", reply) or "") for reply in replies]


def evaluate(
    model_or_path,
    data_dir,
    split: str = "test",
    *,
    form: str = "cot",
    layout: str = "separate",
    variant: str = "train",
    image_size: int | None = None,
    prompt: str = "full",
    swap_images: bool = False,
    batch_size: int = 8,
    out_dir=None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    limit: int | None = None,
    judge=None,
    seed: int = 0,
    progress: bool = True,
    device=None,
    dtype=None,
    **gen,
) -> dict:
    """Evaluate a model (folder, hub alias, or a loaded ``(model, processor)`` pair) on a split.

    ``judge``: a judge object with ``complete(messages, images)``, or a spec string for
    `labkit.judges.make_judge` ("openai:gpt-4o", "local:PATH"); replies then come from the judge
    and ``model_or_path`` may be None. Returns the `labkit.metrics.score` dict plus ``wall_s``,
    ``samples_per_s`` (this run's generated samples / wall time), ``predictions_path`` (or None
    without ``out_dir``), ``generated`` (samples generated this run) and ``resumed`` (skipped).

    Per-candidate verdicts: with a local model each prediction row keeps ``p_ok``, the model's
    P(ok) at its verdict about each candidate (`labkit.verdicts`), and the result gets ``auc``
    (`labkit.metrics.candidate_auc`: overall, per dimension, first candidate) when the split
    has per-candidate defect tags. ``swap_images=True`` is the image-swap control: every sample
    is shown the images of the next sample of the split (the last one the first's) while it is
    scored against its own labels, so whatever AUC remains does not come from seeing its images.
    """
    from labkit.mc_data import is_mc_dataset

    if is_mc_dataset(data_dir):
        # Generalisation benchmarks (multiple choice): same outputs, their own prompts and parser.
        from labkit.mc_tasks import evaluate_mc

        return evaluate_mc(
            model_or_path, data_dir, split, form=form, layout=layout, variant=variant, image_size=image_size,
            batch_size=batch_size, out_dir=out_dir, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, limit=limit, judge=judge, seed=seed,
            progress=progress, device=device, dtype=dtype, **gen,
        )
    from tqdm.auto import tqdm

    from labkit.conversions import Conversion, to_grpo_row
    from labkit.data import load_split
    from labkit.prompts import screening_prompt

    screening_prompt(form, layout, variant, prompt)  # validates the four names with a clear error
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if model_or_path is None and judge is None:
        raise ValueError("evaluate needs a model or a judge")
    ds = load_split(data_dir, split)
    n_total = len(ds) if limit is None else min(limit, len(ds))
    ids = ds.select_columns(["id"])["id"][:n_total]
    unlabelled = [r["id"] for r in ds.select_columns(["id", "answer"]).select(range(n_total)) if r["answer"] is None]
    if unlabelled:
        raise ValueError(f"split {split!r} has unlabelled samples (e.g. {unlabelled[0]!r}); evaluation needs answers")

    if isinstance(judge, str):
        from labkit.judges import make_judge

        judge_name, judge = judge, make_judge(judge)
    else:
        judge_name = None if judge is None else getattr(judge, "spec", type(judge).__name__)
    model_name = None
    model = processor = None
    if judge is None:
        if isinstance(model_or_path, (tuple, list)):
            model, processor = model_or_path
            model_name = getattr(model, "name_or_path", None) or type(model).__name__
        else:
            from labkit.models import load

            # A local folder is recorded by its absolute path, so a resume from another cwd matches.
            model_name = str(Path(model_or_path).resolve()) if Path(str(model_or_path)).is_dir() else str(model_or_path)
            model, processor = load(model_or_path, device=device, dtype=dtype)

    settings = dict(model=model_name, data=str(Path(data_dir).resolve()), split=split, form=form, layout=layout, variant=variant,
                    image_size=image_size, prompt=prompt, max_new_tokens=max_new_tokens, do_sample=do_sample,
                    temperature=temperature, top_k=top_k, top_p=top_p, judge=judge_name, seed=seed,
                    batch_size=batch_size, limit=limit, swap_images=swap_images)
    pred_path = None
    done: dict[str, dict] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        pred_path, done = open_predictions(out_dir, settings)

    todo = [i for i, sid in enumerate(ids) if sid not in done]
    resumed = n_total - len(todo)
    if do_sample:
        import torch

        torch.manual_seed(seed)
    conv = Conversion(form=form, layout=layout, variant=variant, image_size=image_size, prompt=prompt)
    rows_by_id = dict(done)
    t0 = time.perf_counter()
    bar = tqdm(total=n_total, initial=resumed, desc=f"evaluate {split}", unit="sample", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch = []
        for i in todo[start:start + batch_size]:
            row = to_grpo_row(ds[i], conv)
            if swap_images:  # the next sample's images, this sample's labels
                row["images"] = to_grpo_row(ds[(i + 1) % n_total], conv)["images"]
            batch.append(row)
        p_ok = [None] * len(batch)
        if judge is not None:
            replies = _judge_responses(judge, batch)
        else:
            replies, p_ok = generate_responses(
                model, processor, [(r["images"], r["prompt"][0]) for r in batch], batch_size=batch_size,
                max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_k=top_k,
                top_p=top_p, progress=False, verdicts=True, **gen,
            )
        new_rows = [prediction_row(r["id"], reply, r["answer"], r["dimension"] or None, p) for r, reply, p in zip(batch, replies, p_ok)]
        if pred_path is not None:
            with pred_path.open("a") as f:  # one flush per batch: an interruption loses at most a batch
                f.write("".join(json.dumps(row) + "\n" for row in new_rows))
        for row in new_rows:
            rows_by_id[row["id"]] = row
        bar.update(len(batch))
    bar.close()
    wall = time.perf_counter() - t0

    rows = [rows_by_id[sid] for sid in ids]
    result = score([r["prediction"] for r in rows], [r["answer"] for r in rows], [r["dimension"] or "unknown" for r in rows])
    auc = verdict_auc(rows, ds.select(range(n_total)))
    if auc is not None:
        result["auc"] = auc
        result["top1"] = top1_score(rows)
    result.update(
        wall_s=wall,
        samples_per_s=(len(todo) / wall) if todo and wall > 0 else None,
        predictions_path=str(pred_path) if pred_path else None,
        generated=len(todo),
        resumed=resumed,
        settings=settings,
    )
    if judge is not None and hasattr(judge, "stats"):
        # Token and cost counts of this run's judge calls (cached replies cost nothing).
        result["judge"] = judge.stats.as_dict()
    if out_dir is not None:
        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    if judge is None and not swap_images and not isinstance(model_or_path, (tuple, list)) and Path(model_name).is_dir():
        from labkit.model_card import record_evaluation

        record_evaluation(model_name, result)  # a trained final/ folder's README.md gets the scores
    return result
