"""The paper's metric on a split: one resumable evaluation loop over a task.

`evaluate(model_or_path, data_dir, split="test", ...)` evaluates a model (folder, hub alias or a
loaded ``(model, processor)`` pair) or a judge (`labkit.judges`) on a split of a screening
folder (`labkit.data`) or of a prepared multiple-choice benchmark (`labkit.mc.data`); the task
(`labkit.tasks.task_for`) supplies the rows, prompts, prediction lines and the score, and this
module the loop they share. Replies come from `labkit.infer.generate_responses` (or the judge).

It returns the task's score dict (screening: `labkit.metrics.score`, overall and per-dimension
percent, the random baseline of the same samples, ``unparsed``, and ``auc``/``top1`` when the
split has per-candidate defect tags; MC: `labkit.mc.metrics.score_mc`) plus ``wall_s``,
``samples_per_s``, ``predictions_path``, ``generated``, ``resumed`` and ``settings``. With
``out_dir`` it writes ``predictions.jsonl`` (one line per sample: id, response, prediction,
answer, dimension, correct), ``results.json`` and ``run.json`` (the settings); a rerun in the
same folder skips the ids already predicted, so an interrupted evaluation continues where it
stopped. `evaluate_mc` is `evaluate` for MC folders only.

Run ``labkit evaluate --model data/models/small-internvl --data data/synth --out runs/eval``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from labkit.infer import DEFAULT_MAX_NEW_TOKENS, generate_responses, open_predictions
from labkit.judges import make_judge
from labkit.jsonl import append_rows
from labkit.model_card import record_evaluation
from labkit.models import load
from labkit.tasks import MCTask, task_for

# torch and tqdm are imported inside `evaluate`: importing this module (the CLI) must stay fast.


def _judge_responses(judge, inputs: list[tuple[list, dict]]) -> list[str]:
    """Replies of a judge (`labkit.judges`: API or local model) for ``(images, user message)`` pairs, in order.

    Requests of one batch go out together (the judge's concurrency limit applies); cached
    replies send nothing.
    """
    requests = [([message], images) for images, message in inputs]
    if hasattr(judge, "complete_many"):
        replies = judge.complete_many(requests, progress=False)
    else:
        replies = [judge.complete(messages, images) for messages, images in requests]
    return [(getattr(reply, "text", reply) or "") for reply in replies]


def _model_and_judge(model_or_path, judge, device, dtype):
    """(model, processor, model name, judge, judge name): what answers, loaded once.

    A local model folder is recorded by its absolute path, so a resume from another cwd matches.
    """
    if isinstance(judge, str):
        judge_name, judge = judge, make_judge(judge)
    else:
        judge_name = None if judge is None else getattr(judge, "spec", type(judge).__name__)
    if judge is not None:
        return None, None, None, judge, judge_name
    if isinstance(model_or_path, (tuple, list)):
        model, processor = model_or_path
        return model, processor, getattr(model, "name_or_path", None) or type(model).__name__, None, None
    model_name = str(Path(model_or_path).resolve()) if Path(str(model_or_path)).is_dir() else str(model_or_path)
    model, processor = load(model_or_path, device=device, dtype=dtype)
    return model, processor, model_name, None, None


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
    task=None,
    **gen,
) -> dict:
    """Evaluate a model (folder, hub alias, or a loaded ``(model, processor)`` pair) on a split.

    ``judge``: a judge object with ``complete(messages, images)``, or a spec string for
    `labkit.judges.make_judge` ("openai:gpt-4o", "local:PATH"); replies then come from the judge
    and ``model_or_path`` may be None (screening folders only). Returns the task's score dict plus
    ``wall_s``, ``samples_per_s`` (this run's generated samples / wall time), ``predictions_path``
    (or None without ``out_dir``), ``generated`` (samples generated this run), ``resumed``
    (skipped) and ``settings``. ``task``: a `labkit.tasks` task (default: `task_for(data_dir, ...)`
    with the conversion arguments; MC items ignore ``layout``, ``variant``, ``prompt`` and
    ``swap_images`` beyond recording the first two).

    Per-candidate verdicts (screening): with a local model each prediction row keeps ``p_ok``, the
    model's P(ok) at its verdict about each candidate (`labkit.verdicts`), and the result gets
    ``auc`` (`labkit.metrics.candidate_auc`: overall, per dimension, first candidate) when the split
    has per-candidate defect tags. ``swap_images=True`` is the image-swap control: every sample
    is shown the images of the next sample of the split (the last one the first's) while it is
    scored against its own labels, so whatever AUC remains does not come from seeing its images.
    """
    from tqdm.auto import tqdm

    if task is None:
        task = task_for(data_dir, form=form, layout=layout, variant=variant, image_size=image_size, prompt=prompt,
                        swap_images=swap_images)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if judge is not None and not task.judges:
        raise ValueError("judges are not supported for MC evaluation; pass a model")
    if model_or_path is None and judge is None:
        raise ValueError("evaluate needs a model or a judge")
    ds, ids = task.load(split, limit)
    n_total = len(ids)
    model, processor, model_name, judge, judge_name = _model_and_judge(model_or_path, judge, device, dtype)
    common = dict(model=model_name, data=str(Path(data_dir).resolve()), split=split, max_new_tokens=max_new_tokens,
                  do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                  batch_size=batch_size, limit=limit)
    settings = task.settings(common, judge_name)
    pred_path = None
    done: dict[str, dict] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        pred_path, done = open_predictions(out_dir, settings, task.resume_keys)

    todo = [i for i, sid in enumerate(ids) if sid not in done]
    resumed = n_total - len(todo)
    if do_sample:
        import torch

        torch.manual_seed(seed)
    rows_by_id = dict(done)
    t0 = time.perf_counter()
    bar = tqdm(total=n_total, initial=resumed, desc=f"evaluate {split}", unit=task.unit, disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch = task.inputs(ds, todo[start:start + batch_size], n_total)
        inputs = [(images, message) for _, images, message in batch]
        p_ok = [None] * len(batch)
        if judge is not None:
            replies = _judge_responses(judge, inputs)
        else:
            replies = generate_responses(
                model, processor, inputs, batch_size=batch_size, max_new_tokens=max_new_tokens, do_sample=do_sample,
                temperature=temperature, top_k=top_k, top_p=top_p, progress=False, verdicts=task.verdicts, **gen,
            )
            if task.verdicts:
                replies, p_ok = replies
        new_rows = [task.prediction(row, reply, p) for (row, _, _), reply, p in zip(batch, replies, p_ok)]
        if pred_path is not None:
            append_rows(pred_path, new_rows)  # once per batch, fsynced: an interruption loses at most a batch
        for row in new_rows:
            rows_by_id[row["id"]] = row
        bar.update(len(batch))
    bar.close()
    wall = time.perf_counter() - t0

    result = task.score([rows_by_id[sid] for sid in ids], ds, n_total)
    result.update(
        wall_s=wall,
        samples_per_s=(len(todo) / wall) if todo and wall > 0 else None,
        predictions_path=str(pred_path) if pred_path else None,
        generated=len(todo),
        resumed=resumed,
        settings=settings,
        **task.extras(),
    )
    if judge is not None and hasattr(judge, "stats"):
        # Token and cost counts of this run's judge calls (cached replies cost nothing).
        result["judge"] = judge.stats.as_dict()
    if out_dir is not None:
        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    if task.kind == "screen" and judge is None and not swap_images and model_name and Path(model_name).is_dir() \
            and not isinstance(model_or_path, (tuple, list)):
        record_evaluation(model_name, result)  # a trained final/ folder's README.md gets the scores
    return result


def evaluate_mc(model_or_path, data_dir, split: str = "test", *, form: str = "cot", layout: str | None = None,
                variant: str | None = None, image_size: int | None = None, **kwargs) -> dict:
    """`evaluate` on a prepared multiple-choice folder (`labkit.mc.data`); refuses any other folder.

    ``layout`` and ``variant`` do not apply to MC items and are recorded only. The result is
    `labkit.mc.metrics.score_mc`'s dict plus what `evaluate` adds and ``benchmark``.
    """
    task = task_for(data_dir, form=form, layout=layout, variant=variant, image_size=image_size)
    if not isinstance(task, MCTask):
        raise ValueError(f"{data_dir} is not a prepared multiple-choice folder (labkit mc-prepare writes one)")
    return evaluate(model_or_path, data_dir, split, task=task, **kwargs)
