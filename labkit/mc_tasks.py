"""Multiple-choice items as model inputs: prompt, SFT and GRPO rows, evaluation.

An item of a prepared MC folder (`labkit.mc_data`) becomes, like a screening sample:

- a prompt in the lab's style (`mc_prompt`): a role, the images in order ("image 1" …),
  the question, the lettered options, and the answer format (CoT:
  ``<think>…</think><answer>X</answer>``; direct: the letter only);
- an SFT row (``messages`` + ``images``, `to_mc_sft_row`). The benchmarks ship no chains
  of thought, so the CoT target is a short *generic* think that names the chosen option
  followed by the answer tag (`mc_target`); it teaches the format GRPO's rewards need, not
  reasoning (it names no option text, so long options do not lengthen it). ``form: direct``
  teaches the bare letter instead;
- a GRPO row (conversational ``prompt`` with one ``{"type": "image"}`` per image, ``images``,
  ``answer`` letter, ``id``, ``dimension`` = category, ``n_options``), which TRL passes to
  the rewards ``mc_format`` and ``mc_accuracy`` (`labkit.mc_metrics`) as keyword arguments.

`build_mc_sft_dataset(recipe)` / `build_mc_grpo_dataset(recipe)` return what
`labkit.sft.build_sft_dataset` / `labkit.grpo.build_grpo_dataset` return, for a recipe whose
``data`` is an MC folder. `evaluate_mc` has the signature of `labkit.evaluate.evaluate` and
writes the same files (``predictions.jsonl`` with a ``correct`` field, ``results.json``,
``run.json``; resumable), scoring with `labkit.mc_metrics.score_mc` (micro ``overall``,
``macro`` over categories, ``per_dimension`` per category).

    labkit mc-evaluate --model runs/gen/sft/final --data data/mc/blink --split test --out runs/gen/eval
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from labkit.mc_metrics import letters_for, parse_mc_answer, score_mc

MC_FORMS = ("cot", "direct")
MC_ROLE = "You are an expert at answering questions about images: look carefully, then choose one option."
DEFAULT_MAX_NEW_TOKENS = 256


def _images_line(n_images: int) -> str:
    if n_images == 1:
        return "You are given one image (image 1)."
    return f"You are given {n_images} images, in order: " + ", ".join(f"image {k}" for k in range(1, n_images + 1)) + "."


def mc_prompt(question: str, options: list[str], form: str = "cot", n_images: int = 1) -> str:
    """The user instruction for one MC item (the images come first, in order)."""
    if form not in MC_FORMS:
        raise ValueError(f"unknown prompt form {form!r}; expected one of {MC_FORMS}")
    letters = letters_for(len(options))
    option_lines = [f"{letter}. {text}" for letter, text in zip(letters, options)]
    rule = f"Exactly one option is correct: answer with its letter ({letters[0]}-{letters[-1]})."
    fmt = (
        "Think it through inside <think></think>, then write only the letter inside <answer></answer>."
        if form == "cot" else "Reply with the letter only."
    )
    return "\n".join([MC_ROLE, _images_line(n_images), f"Question: {question.strip()}", "Options:", *option_lines, rule, fmt])


def mc_target(answer: str, options: list[str], form: str = "cot") -> str:
    """The assistant reply SFT teaches: a generic think naming the option, then the answer tag."""
    letters = letters_for(len(options))
    if answer not in letters:
        raise ValueError(f"answer {answer!r} is not one of the letters {letters}")
    if form == "direct":
        return answer
    if form != "cot":
        raise ValueError(f"unknown prompt form {form!r}")
    return f"<think>I compare each option with the image(s): option {answer} fits.</think><answer>{answer}</answer>"


def item_images(item: dict, image_size: int | None = None) -> list:
    """The item's images as RGB PIL images, in order; resized to a square when asked."""
    from PIL import Image as PILImage

    from labkit.data import open_image

    images = [open_image(im, item.get("id", "?"), f"image {k}") for k, im in enumerate(item["images"], 1)]
    if image_size:
        images = [im.resize((image_size, image_size), PILImage.BICUBIC) for im in images]
    return images


def _form(conv) -> str:
    form = getattr(conv, "form", "cot")
    if form not in MC_FORMS:
        raise ValueError(f"unknown prompt form {form!r}; expected one of {MC_FORMS}")
    return form


def to_mc_sft_row(item: dict, conv) -> dict:
    """``messages`` (user: images + prompt; assistant: target) and ``images``.

    ``conv`` is any object with ``form`` and ``image_size`` (e.g. `labkit.conversions.Conversion`;
    its layout and variant do not apply to MC items).
    """
    from labkit.conversions import user_message

    if item.get("answer") is None:
        raise ValueError(f"item {item.get('id')!r}: SFT needs an answer (hidden answers cannot be trained on)")
    form = _form(conv)
    images = item_images(item, getattr(conv, "image_size", None))
    return {
        "messages": [
            user_message(len(images), mc_prompt(item["question"], item["options"], form, len(images))),
            {"role": "assistant", "content": [{"type": "text", "text": mc_target(item["answer"], item["options"], form)}]},
        ],
        "images": images,
    }


def to_mc_grpo_row(item: dict, conv) -> dict:
    """Conversational ``prompt`` + ``images`` + ``answer`` letter + ``id``, ``dimension``, ``n_options``."""
    from labkit.conversions import user_message

    if item.get("answer") is None:
        raise ValueError(f"item {item.get('id')!r}: GRPO needs an answer (hidden answers cannot be trained on)")
    images = item_images(item, getattr(conv, "image_size", None))
    return {
        "prompt": [user_message(len(images), mc_prompt(item["question"], item["options"], _form(conv), len(images)))],
        "images": images,
        "answer": item["answer"],
        "id": item["id"],
        "dimension": item.get("category") or "",
        "n_options": len(item["options"]),
    }


def to_sft_dataset(ds, conv):
    """A prepared MC split (`labkit.mc_data.load_mc`) as SFT rows."""
    return ds.map(lambda it: to_mc_sft_row(it, conv), remove_columns=list(ds.column_names))


def to_grpo_dataset(ds, conv):
    """A prepared MC split as GRPO rows."""
    return ds.map(lambda it: to_mc_grpo_row(it, conv), remove_columns=list(ds.column_names))


def _training_split(recipe):
    from labkit.mc_data import load_mc
    from labkit.training import load_training_split

    return load_training_split(recipe, loader=load_mc)


def build_mc_sft_dataset(recipe):
    """(rows, info) for an SFT recipe on an MC folder, as `labkit.sft.build_sft_dataset` returns."""
    if list(recipe.tasks) != ["screen"]:
        raise ValueError(f"{recipe.source or recipe.arm}: MC data has no captions; tasks must be [screen]")
    ds = _training_split(recipe)
    rows = to_sft_dataset(ds, recipe.conversion)
    return rows, {"rows": len(rows), "samples": len(ds), "skipped": {"screen": 0, "caption": 0}, "kind": "mc"}


def build_mc_grpo_dataset(recipe):
    """GRPO rows for a recipe on an MC folder, as `labkit.grpo.build_grpo_dataset` returns."""
    bad = [name for name in recipe.rewards if name in ("accuracy", "dpa", "format", "metric")]
    if bad:
        raise ValueError(
            f"{recipe.source or recipe.arm}: reward(s) {', '.join(bad)} parse screening answers (A-D, N, several "
            f"letters); MC items need mc_format and mc_accuracy"
        )
    return to_grpo_dataset(_training_split(recipe), recipe.conversion)


# ----------------------------------------------------------------------------- evaluation

def mc_prediction_row(item_id: str, response: str, answer: str, n_options: int, category: str) -> dict:
    """One predictions.jsonl line (``correct`` is what HCM mining reads)."""
    prediction = parse_mc_answer(response, n_options)
    return {"id": item_id, "response": response, "prediction": prediction, "answer": answer,
            "dimension": category, "n_options": n_options, "correct": prediction is not None and prediction == answer}


def score_predictions(rows: list[dict]) -> dict:
    """`score_mc` over predictions.jsonl rows (per category only when items have categories)."""
    cats = [r.get("dimension") or "" for r in rows]
    return score_mc([r["prediction"] for r in rows], [r["answer"] for r in rows],
                    [int(r["n_options"]) for r in rows], cats if any(cats) else None)


def evaluate_mc(
    model_or_path,
    data_dir,
    split: str = "test",
    *,
    form: str = "cot",
    layout: str | None = None,
    variant: str | None = None,
    image_size: int | None = None,
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
    """Evaluate a model (folder, hub alias or ``(model, processor)``) on an MC split.

    The signature of `labkit.evaluate.evaluate` (``layout`` and ``variant`` do not apply to
    MC items and are recorded only). Refuses splits with hidden answers. Returns the
    `score_mc` dict plus ``wall_s``, ``samples_per_s``, ``predictions_path``, ``generated``,
    ``resumed``.
    """
    from tqdm.auto import tqdm

    from labkit.evaluate import generate_responses, open_predictions
    from labkit.mc_data import load_mc

    if judge is not None:
        raise ValueError("judges are not supported for MC evaluation; pass a model")
    if form not in MC_FORMS:
        raise ValueError(f"unknown prompt form {form!r}; expected one of {MC_FORMS}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    ds = load_mc(data_dir, split)
    n_total = len(ds) if limit is None else min(limit, len(ds))
    meta = ds.select_columns(["id", "answer", "n_options", "category"]).select(range(n_total)).to_list()
    hidden = [m["id"] for m in meta if m["answer"] is None]
    if hidden:
        raise ValueError(f"split {split!r} of {data_dir} has hidden answers (e.g. {hidden[0]!r}); it cannot be scored")

    if isinstance(model_or_path, (tuple, list)):
        model, processor = model_or_path
        model_name = getattr(model, "name_or_path", None) or type(model).__name__
    else:
        from labkit.models import load

        model_name = str(model_or_path)
        model, processor = load(model_or_path, device=device, dtype=dtype)

    settings = dict(model=model_name, data=str(data_dir), split=split, kind="mc", form=form, layout=layout,
                    variant=variant, image_size=image_size, max_new_tokens=max_new_tokens, do_sample=do_sample,
                    temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, batch_size=batch_size, limit=limit)
    pred_path = None
    done: dict[str, dict] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        # layout and variant do not apply to MC items, so they do not block a resume.
        keys = ("model", "data", "split", "form", "image_size", "max_new_tokens", "do_sample", "temperature", "top_k", "top_p")
        pred_path, done = open_predictions(out_dir, settings, keys)

    todo = [i for i, m in enumerate(meta) if m["id"] not in done]
    resumed = n_total - len(todo)
    if do_sample:
        import torch

        torch.manual_seed(seed)
    rows_by_id = dict(done)
    t0 = time.perf_counter()
    bar = tqdm(total=n_total, initial=resumed, desc=f"evaluate {split}", unit="item", disable=not progress)
    for start in range(0, len(todo), batch_size):
        chunk = [ds[i] for i in todo[start:start + batch_size]]
        inputs = []
        for item in chunk:
            images = item_images(item, image_size)
            inputs.append((images, mc_prompt(item["question"], item["options"], form, len(images))))
        replies = generate_responses(
            model, processor, inputs, batch_size=batch_size, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, progress=False, **gen,
        )
        new = [mc_prediction_row(it["id"], reply, it["answer"], len(it["options"]), it["category"] or "")
               for it, reply in zip(chunk, replies)]
        for row in new:
            rows_by_id[row["id"]] = row
        if pred_path is not None:
            with pred_path.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
        bar.update(len(chunk))
    bar.close()
    wall = time.perf_counter() - t0
    rows = [rows_by_id[m["id"]] for m in meta]
    result: dict[str, Any] = score_predictions(rows)
    result.update(wall_s=wall, samples_per_s=(len(todo) / wall) if wall > 0 and todo else None,
                  predictions_path=str(pred_path) if pred_path else None, generated=len(todo), resumed=resumed,
                  benchmark=_benchmark_of(data_dir))
    if out_dir is not None:
        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _benchmark_of(data_dir) -> str | None:
    try:
        return json.loads((Path(data_dir) / "dataset.json").read_text()).get("benchmark")
    except (OSError, ValueError):
        return None
