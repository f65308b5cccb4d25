"""Multiple-choice items as model inputs: prompt, SFT and GRPO rows, prediction rows and scores.

An item of a prepared MC folder (`labkit.mc.data`) becomes, like a screening sample:

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
  the rewards ``mc_format`` and ``mc_accuracy`` (`labkit.mc.metrics`) as keyword arguments.

`build_mc_sft_dataset(recipe)` / `build_mc_grpo_dataset(recipe)` return what
`labkit.sft.build_sft_dataset` / `labkit.grpo.build_grpo_dataset` return, for a recipe whose
``data`` is an MC folder. Evaluation: `mc_prediction_row` (a predictions.jsonl line with a
``correct`` field) and `score_predictions` (`labkit.mc.metrics.score_mc`: micro ``overall``,
``macro`` over categories, ``per_dimension`` per category) are the MC task's parts
(`labkit.tasks.MCTask`), driven by the one resumable loop `labkit.evaluate.evaluate`
(`labkit.evaluate.evaluate_mc` for MC folders only).

    labkit mc-evaluate --model runs/gen/sft/final --data data/mc/blink --split test --out runs/gen/eval
"""
from __future__ import annotations

from PIL import Image as PILImage

from labkit.conversions import user_message
from labkit.data import load_training_split, open_image
from labkit.mc.data import load_mc
from labkit.mc.metrics import letters_for, parse_mc_answer, score_mc

MC_FORMS = ("cot", "direct")
# Rewards that parse screening answers (A-D, N, several letters): refused on MC items.
SCREENING_REWARDS = ("accuracy", "dpa", "format", "metric")
MC_ROLE = "You are an expert at answering questions about images: look carefully, then choose one option."


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

    ``conv`` is any object with ``form`` and ``image_size`` (e.g. `labkit.data.Conversion`;
    its layout and variant do not apply to MC items).
    """
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
    """A prepared MC split (`labkit.mc.data.load_mc`) as SFT rows."""
    return ds.map(lambda it: to_mc_sft_row(it, conv), remove_columns=list(ds.column_names))


def to_grpo_dataset(ds, conv):
    """A prepared MC split as GRPO rows."""
    return ds.map(lambda it: to_mc_grpo_row(it, conv), remove_columns=list(ds.column_names))


def _training_split(recipe):
    return load_training_split(recipe, loader=load_mc)


def build_mc_sft_dataset(recipe):
    """(rows, info) for an SFT recipe on an MC folder, as `labkit.sft.build_sft_dataset` returns."""
    if list(recipe.tasks) != ["screen"]:
        raise ValueError(f"{recipe.source or recipe.arm}: MC data has no captions; tasks must be [screen]")
    ds = _training_split(recipe)
    rows = to_sft_dataset(ds, recipe.conversion)
    return rows, {"rows": len(rows), "samples": len(ds), "skipped": {"screen": 0, "caption": 0}, "kind": "mc"}


def check_mc_rewards(rewards, source: str) -> None:
    """Refuse the screening rewards (`SCREENING_REWARDS`) on MC items, naming the ones to use."""
    bad = [name for name in rewards if name in SCREENING_REWARDS]
    if bad:
        raise ValueError(
            f"{source}: reward(s) {', '.join(bad)} parse screening answers (A-D, N, several "
            f"letters); MC items need mc_format and mc_accuracy"
        )


def build_mc_grpo_dataset(recipe):
    """GRPO rows for a recipe on an MC folder, as `labkit.grpo.build_grpo_dataset` returns."""
    check_mc_rewards(recipe.rewards, recipe.source or recipe.arm)
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
