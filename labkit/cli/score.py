"""`labkit score PREDICTIONS.jsonl`: the paper's metric over a predictions file.

Each line is ``{"id", "prediction", "answer", "dimension"}``; ``prediction`` may be a raw
model response (it is parsed) or null. Prints a table and writes ``<input>.score.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

from labkit.jsonl import read_rows
from labkit.metrics import canonical_answer, format_table, parse_answer, score


def register(sub):
    p = sub.add_parser("score", help="score a predictions JSONL file", description=__doc__)
    p.add_argument("predictions", help="JSONL with id, prediction, answer, dimension per line")
    p.add_argument("--out", help="where to write the JSON (default: next to the input)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def read_predictions(path: str | Path):
    preds, labels, dims = [], [], []
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"predictions file {str(path)!r} does not exist")
    for lineno, row in enumerate(read_rows(path), 1):  # the one JSONL reader (a torn last line is dropped)
        if not isinstance(row, dict) or "answer" not in row:
            raise ValueError(f"{path}:{lineno}: needs an object with 'answer' (and prediction, id, dimension)")
        try:
            labels.append(canonical_answer(row["answer"]))
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno} (id {row.get('id')!r}): {exc}") from exc
        pred = row.get("prediction")
        preds.append(None if pred is None else parse_answer(str(pred)))
        dims.append(row.get("dimension") or "unknown")
    if not labels:
        raise ValueError(f"{path}: no predictions")
    return preds, labels, dims


def run(args) -> int:
    preds, labels, dims = read_predictions(args.predictions)
    result = score(preds, labels, dims)
    out = Path(args.out) if args.out else Path(args.predictions).with_suffix(".score.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table({Path(args.predictions).stem: result}))
    print(f"wrote {out}")
    return 0
