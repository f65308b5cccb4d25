"""Hugging Face model cards (``README.md``) for trained ``final/`` folders.

`write_model_card(final_dir)` writes the card from what the folder already holds:
``labkit_train.json`` (the recipe, steps, data counts, written by `labkit.training.save_final`),
``labkit_model.json`` (architecture of the lab's own models) and ``labkit_evaluations.json``
(test scores recorded by `record_evaluation`). The card has the Hub's YAML header
(``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``datasets`` and, once evaluated,
a ``model-index`` with the scores), then the recipe, the training data with its fingerprint
(SHA-256 of the split files it was read from), the scores per dimension next to the random
baseline with the seed, and the intended use.

Written at the end of every training run (`labkit.training.save_final`, so SFT, GRPO and HCM
alike) and updated by `labkit.evaluate.evaluate` (``labkit evaluate --model RUN/final ...``):
one entry per dataset, split and settings, a rerun replacing its entry.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import yaml

from labkit.data import _split_files
from labkit.models import HUB_ALIASES

CARD_FILE = "README.md"
TRAIN_INFO = "labkit_train.json"
MODEL_INFO = "labkit_model.json"
EVALS_FILE = "labkit_evaluations.json"
# Settings of an evaluation that make two results comparable (one card entry per combination).
EVAL_KEYS = ("form", "layout", "variant", "image_size", "prompt", "max_new_tokens", "do_sample", "temperature",
             "top_k", "top_p", "limit", "swap_images")


def dataset_fingerprint(root: str | os.PathLike, splits) -> str | None:
    """SHA-256 over the names and bytes of the split files (None when the folder has none)."""

    digest = hashlib.sha256()
    files = [f for split in splits for f in _split_files(Path(root), split)]
    if not files:
        return None
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def _dataset_name(root) -> str:
    manifest = Path(root) / "dataset.json"
    if manifest.exists():
        try:
            return json.loads(manifest.read_text()).get("name") or Path(root).name
        except ValueError:
            pass
    return Path(str(root)).name


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.exists() else default


def _base_model(name: str) -> str:
    return HUB_ALIASES.get(name, name)


def _header(info: dict, model_info: dict, evals: list[dict], name: str) -> dict:
    recipe = info.get("recipe", {})
    tags = ["labkit", "image-aesthetic-reasoning", "hcm-grpo", recipe.get("stage", "")]
    if model_info.get("arch"):
        tags.append(model_info["arch"])
    tags += ["trl"] + (["lora"] if recipe.get("lora") else [])
    header = {
        "base_model": _base_model(str(recipe.get("model", ""))),
        "library_name": "transformers",
        "pipeline_tag": "image-text-to-text",
        "tags": [t for t in dict.fromkeys(tags) if t],
        "datasets": [_dataset_name(recipe.get("data", ""))],
    }
    if evals:
        header["model-index"] = [{"name": name, "results": [{
            "task": {"type": "image-text-to-text", "name": "AI-generated image screening"},
            "dataset": {"name": _dataset_name(e["data"]), "type": _dataset_name(e["data"]), "split": e["split"]},
            "metrics": [{"type": "accuracy", "name": "overall", "value": round(e["overall"], 2)}]
            + [{"type": "accuracy", "name": dim, "value": round(v, 2)} for dim, v in e["per_dimension"].items()],
        } for e in evals]}]
    return header


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _evaluation_section(evals: list[dict]) -> list[str]:
    if not evals:
        return ["Not evaluated yet. Run `labkit evaluate --model THIS_FOLDER --data DATASET --split test` "
                "and this section fills in.", ""]
    lines = []
    for e in evals:
        s = e["settings"]
        lines += [f"### {e['data']} ({e['split']}, {e['n']} samples)", "",
                  f"Evaluated {e['date']} with seed {e['seed']}; prompt {s.get('form')}/{s.get('prompt')}, "
                  f"layout {s.get('layout')}, variant {s.get('variant')}, image size {s.get('image_size') or 'as stored'}, "
                  f"{'sampling' if s.get('do_sample') else 'greedy'} decoding"
                  + (f", first {s['limit']} samples" if s.get("limit") else "")
                  + f"; data fingerprint `{e.get('data_fingerprint')}`. Unparsed replies: {e['unparsed']}.", "",
                  "| dimension | n | score % | random baseline % |", "|---|---:|---:|---:|",
                  f"| overall | {e['n']} | {_fmt(e['overall'])} | {_fmt(e['random_baseline'])} |"]
        for dim, value in e["per_dimension"].items():
            lines.append(f"| {dim} | {e['n_per_dimension'].get(dim, '-')} | {_fmt(value)} | "
                         f"{_fmt(e['random_per_dimension'].get(dim))} |")
        lines.append("")
    return lines


def render_card(final_dir: str | os.PathLike) -> str:
    """The card text of a trained folder (see the module docstring)."""
    final = Path(final_dir)
    info = _read_json(final / TRAIN_INFO, None)
    if info is None:
        raise FileNotFoundError(f"{final}: no {TRAIN_INFO}; model cards are for folders written by labkit training")
    model_info = _read_json(final / MODEL_INFO, {})
    evals = _read_json(final / EVALS_FILE, [])
    recipe = info.get("recipe", {})
    name = f"{recipe.get('arm', final.parent.name)}"
    splits = [recipe.get("split", "train"), *recipe.get("extra_splits", [])]
    data = info.get("data") or {}
    samples = data.get("samples", info.get("samples"))
    recipe_shown = {k: v for k, v in recipe.items() if v not in (None, {}, [], "")}
    header = yaml.safe_dump(_header(info, model_info, evals, name), sort_keys=False, allow_unicode=True)
    lines = [
        "---", header.rstrip("\n"), "---", "",
        f"# {name}: a screener for AI-generated product images", "",
        (recipe.get("description") or f"Trained with the `{recipe.get('stage')}` stage of the HCM-GRPO screening lab (labkit)."),
        "",
        "Given an original product photo and four generated candidates A-D, the model reasons inside "
        "`<think>...</think>` and answers with the acceptable letters in `<answer>...</answer>` (`N` for none).",
        "",
        "## Recipe", "",
        f"Stage `{recipe.get('stage')}`, arm `{recipe.get('arm')}`, started from `{recipe.get('model')}`"
        + (f" ({model_info['arch']} {model_info.get('size', '')})" if model_info.get("arch") else "")
        + f"; {info.get('global_step', '?')} optimizer steps, seed {recipe.get('seed')}"
        + (f", {info['minutes']:.1f} minutes" if isinstance(info.get("minutes"), (int, float)) else "")
        + (f". Recipe file: `{recipe['source']}`." if recipe.get("source") else "."),
        "", "```yaml", yaml.safe_dump(recipe_shown, sort_keys=False, allow_unicode=True).rstrip("\n"), "```", "",
        "## Training data", "",
        f"- dataset: `{recipe.get('data')}` (name `{_dataset_name(recipe.get('data', ''))}`)",
        f"- split(s): {', '.join(splits)}" + (f", first {recipe['limit']} samples" if recipe.get("limit") else ""),
        f"- samples: {samples if samples is not None else '-'}" + (f", training rows: {data['rows']}" if data.get("rows") else ""),
        f"- fingerprint: `{info.get('data_fingerprint') or '-'}` (SHA-256 of the split files)",
        "",
        "## Evaluation", "",
        "Score: the paper's metric (percent of samples whose answer is right); the random baseline is the "
        "expected score of a uniform guess over the same samples.", "",
        *_evaluation_section(evals),
        "## Intended use", "",
        "Screening AI-generated product images (inpainted or outpainted around an original product photo) "
        "for appearance deformation, wrong physical shadows, bad placement and invented content, as a "
        "pre-filter before human review. It is not a general image-quality or safety classifier. Models "
        "trained in the lab's small mode on its synthetic data are for teaching and testing the pipeline; "
        "check the scores above against the random baseline on your own test split before relying on it.",
        "",
        "## How to use", "",
        "```bash",
        f"labkit screen ITEMS_FOLDER --model {final} --out screened/",
        f"labkit evaluate --model {final} --data DATASET --split test --out runs/eval",
        "```", "",
    ]
    return "\n".join(lines)


def write_model_card(final_dir: str | os.PathLike) -> Path:
    """Write ``final_dir/README.md`` (replacing TRL's) and record the training data's fingerprint once."""
    final = Path(final_dir)
    info_path = final / TRAIN_INFO
    info = _read_json(info_path, None)
    if info is not None and "data_fingerprint" not in info:
        recipe = info.get("recipe", {})
        data = recipe.get("data")
        if data and Path(data).is_dir():
            info["data_fingerprint"] = dataset_fingerprint(data, [recipe.get("split", "train"), *recipe.get("extra_splits", [])])
            info_path.write_text(json.dumps(info, indent=2, default=str) + "\n")
    path = final / CARD_FILE
    path.write_text(render_card(final))
    return path


def record_evaluation(model_dir: str | os.PathLike, result: dict) -> Path | None:
    """Add (or replace) an evaluation of a trained folder and rewrite its card.

    ``result``: what `labkit.evaluate.evaluate` returns. Folders not written by labkit training
    (base models, hub ids) are left alone: returns None.
    """
    final = Path(str(model_dir))
    if not (final / TRAIN_INFO).exists():
        return None
    settings = result.get("settings", {})
    entry = {
        "data": settings.get("data"), "split": settings.get("split"), "seed": settings.get("seed"),
        "settings": {k: settings.get(k) for k in EVAL_KEYS},
        "date": datetime.date.today().isoformat(),
        "data_fingerprint": dataset_fingerprint(settings["data"], [settings["split"]]) if settings.get("data") else None,
        **{k: result.get(k) for k in ("n", "overall", "random_baseline", "unparsed", "per_dimension",
                                      "random_per_dimension", "n_per_dimension")},
    }
    evals = [e for e in _read_json(final / EVALS_FILE, [])
             if (e["data"], e["split"], e["settings"]) != (entry["data"], entry["split"], entry["settings"])]
    evals.append(entry)
    (final / EVALS_FILE).write_text(json.dumps(evals, indent=2) + "\n")
    return write_model_card(final)
