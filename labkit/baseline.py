"""The discriminative baseline: a small CNN that scores each candidate against the original and its siblings.

It answers the question every student asks: what does a reasoning VLM add over a plain classifier
trained on the same split in the same CPU budget? No language, no reasoning, no prompt:

- every image of a sample (original, A-D) goes through one shared convolutional encoder
  (4 conv layers, each halving the side: 1/16 resolution feature maps);
- per candidate, a head sees three feature maps stacked: the candidate's, the candidate's minus the
  original's (what the generator changed) and the candidate's minus the mean of the other three
  candidates' (the *context* feature: siblings share one scene, so what differs from them is what
  the generator got wrong; it matters most for shadows); it predicts P(acceptable) and, as an
  auxiliary multi-label target, which of the four defect dimensions the candidate shows;
- it is trained with binary cross-entropy on the split's per-candidate labels
  (``candidate_defects``; an empty list = acceptable), AdamW, warm-up then cosine decay, all five
  images flipped left-right together half of the time, for a fixed step budget (and a wall-clock cap).

Decision rule (chosen on the *training* split, never on the test split): ``top1`` answers the
single most confident candidate, or ``N`` when its P(acceptable) is below a threshold; ``all``
answers every candidate at or above a threshold, ``N`` when none is. With ``rule: auto`` both rules
and every threshold on a grid are scored on the training split with the lab's metric
(`labkit.metrics.is_correct`: at least one letter, all of them acceptable; ``N`` only for ``N``)
and the best pair is kept. ``top1`` usually wins: naming one sure candidate is safer under the
metric than naming all likely ones. The training split's probabilities come from a model that has
seen those samples, so the chosen threshold can sit a little high; the test score is honest.

Outputs of `train_baseline` in ``out_dir``: ``model.safetensors`` (weights), ``baseline.json``
(the config, the rule, the threshold, the training log summary), ``train_log.jsonl`` (loss per 25
steps) and ``eval/predictions.jsonl`` + ``eval/results.json``, the same files and result dict as
`labkit.evaluate.evaluate` (overall, per_dimension, random_baseline, random_per_dimension, n,
unparsed, n_per_dimension) plus ``auc`` (`labkit.metrics.candidate_auc` of P(acceptable)) and
each row's ``p_ok``.

    labkit baseline --data runs/demo/data --out runs/baseline --recipe recipes/baseline/cnn-small.yaml
    labkit ablate --recipe-set small --arms baseline-cnn --out runs/demo   # as an arm of a recipe set

Speed (docs/training.md, "CNN baseline"): one CPU thread by default (``threads``), so it measures
the same thing on a laptop and on a shared runner.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from labkit.data import DEFECT_DIMENSIONS, load_split
from labkit.jsonl import write_atomic
from labkit.metrics import LETTERS, NONE_ANSWER, candidate_auc, score
from labkit.pretrain_vision import image_tensors

# torch is imported inside the functions: `labkit --help` and the ablation runner stay fast.

RULES = ("top1", "all")


@dataclass
class BaselineConfig:
    """The CNN baseline's settings (recipe YAML keys; see recipes/baseline/cnn-small.yaml)."""

    image_size: int = field(default=64, metadata={"help": "input side in px (the data's images are resized)"})
    width: int = field(default=16, metadata={"help": "channels of the first conv layer (x2, x4, x8 after); 16 = ~0.3M parameters"})
    context: bool = field(default=True, metadata={"help": "add the candidate-minus-siblings feature map"})
    aux_dimensions: bool = field(default=True, metadata={"help": "also predict the four defect dimensions (auxiliary loss)"})
    steps: int = field(default=700, metadata={"help": "optimizer steps (the budget that makes runs reproducible)"})
    max_train_s: float | None = field(default=240.0, metadata={"help": "wall-clock cap on training in seconds (null = none); the lr schedule follows whichever budget runs out first"})
    batch_size: int = field(default=32, metadata={"help": "samples per step (each with its four candidates)"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=30, metadata={"help": "linear warm-up steps"})
    flip: bool = field(default=True, metadata={"help": "flip all five images left-right together half of the time"})
    rule: str = field(default="auto", metadata={"help": "decision rule: top1 | all | auto (the better on the training split)"})
    threshold: float | None = field(default=None, metadata={"help": "fixed P(acceptable) threshold; null = chosen on the training split"})
    train_split: str = field(default="train", metadata={"help": "split to train on (and to choose the threshold on)"})
    limit: int | None = field(default=None, metadata={"help": "only the first N training samples"})
    threads: int | None = field(default=1, metadata={"help": "torch CPU threads (null = torch's default)"})
    seed: int = field(default=0, metadata={"help": "seed for the initialisation, batch order and flips"})
    eval_batch_size: int = field(default=64, metadata={"help": "samples per forward pass at prediction time"})


def load_config(path=None, overrides: dict | None = None) -> BaselineConfig:
    """A `BaselineConfig` from a recipe YAML (keys = the dataclass fields; ``arm``/``description`` ignored) and overrides."""
    import yaml

    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"baseline recipe {str(p)!r} does not exist")
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{p}: a baseline recipe is a mapping of settings, got {type(raw).__name__}")
    raw = {k: v for k, v in raw.items() if k not in ("arm", "kind", "description")}
    raw.update(overrides or {})
    known = {f.name for f in fields(BaselineConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown baseline setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    cfg = BaselineConfig(**raw)
    check_config(cfg)
    return cfg


def check_config(cfg: BaselineConfig) -> None:
    """Raise ValueError naming the first bad setting."""
    if cfg.image_size < 16:
        raise ValueError(f"image_size must be at least 16 px, got {cfg.image_size}")
    for name in ("width", "steps", "batch_size", "eval_batch_size"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.rule not in (*RULES, "auto"):
        raise ValueError(f"rule must be top1, all or auto, got {cfg.rule!r}")
    if cfg.threshold is not None and not 0 <= cfg.threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1], got {cfg.threshold}")
    if cfg.lr <= 0:
        raise ValueError(f"lr must be positive, got {cfg.lr}")


# ----------------------------------------------------------------------------- data

def load_arrays(data_dir, split: str, size: int, limit: int | None = None, progress: bool = True) -> dict:
    """A split as arrays: ``X`` uint8 [n, 5, 3, size, size] (original, A-D), ``Y`` defect tags
    [n, 4, 4], ``ok`` bool [n, 4], and the ids, answers, dimensions and defect lists."""

    ds = load_split(data_dir, split, validate=False)
    if "candidate_defects" not in ds.column_names:
        raise ValueError(f"split {split!r} of {data_dir} has no candidate_defects column: the baseline needs per-candidate labels")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        ds = ds.select(range(min(limit, len(ds))))
    meta = ds.select_columns(["id", "answer", "dimension", "candidate_defects"])
    defects = meta["candidate_defects"]
    bad = [meta["id"][i] for i, d in enumerate(defects) if d is None or len(d) != 4]
    if bad:
        raise ValueError(f"split {split!r}: sample {bad[0]!r} (and {len(bad) - 1} more) lacks per-candidate defect tags (4 lists)")
    unlabelled = [sid for sid, a in zip(meta["id"], meta["answer"]) if a is None]
    if unlabelled:
        raise ValueError(f"split {split!r} has unlabelled samples (e.g. {unlabelled[0]!r})")
    X, Y = image_tensors(ds, size, progress=progress)
    return {"X": X, "Y": Y, "ok": np.array([[not d for d in row] for row in defects]), "ids": meta["id"],
            "answers": meta["answer"], "dimensions": [d or "unknown" for d in meta["dimension"]], "defects": defects}


# ----------------------------------------------------------------------------- model

def build_model(cfg: BaselineConfig):
    """The CNN (`torch.nn.Module`): uint8 [B, 5, 3, s, s] -> logits [B, 4, 1 + 4] (acceptable, then the dimensions)."""
    import torch
    import torch.nn as nn

    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class PairCNN(nn.Module):
        def __init__(self, w: int, context: bool):
            super().__init__()
            self.context = context
            # Every layer halves the side: the wide layers run on small maps, so a step stays cheap on one CPU thread.
            self.encoder = nn.Sequential(block(3, w, 2), block(w, 2 * w, 2), block(2 * w, 4 * w, 2), block(4 * w, 8 * w, 2))
            n_maps = 3 if context else 2
            self.head = nn.Sequential(nn.Conv2d(n_maps * 8 * w, 8 * w, 1, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True),
                                      block(8 * w, 8 * w, 1))
            self.out = nn.Linear(16 * w, 1 + len(DEFECT_DIMENSIONS))

        def forward(self, x):  # x: uint8 [B, 5, 3, s, s]
            b = x.shape[0]
            f = self.encoder((x.flatten(0, 1).float() / 255 - 0.5) / 0.25)
            f = f.view(b, 5, *f.shape[1:])
            orig, cand = f[:, :1], f[:, 1:]
            maps = [cand, cand - orig]
            if self.context:
                maps.append(cand - (cand.sum(1, keepdim=True) - cand) / 3)
            h = self.head(torch.cat(maps, 2).flatten(0, 1))
            pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
            return self.out(pooled).view(b, 4, -1)

    return PairCNN(cfg.width, cfg.context)


def predict_ok(model, X, batch_size: int = 64):
    """P(acceptable) per candidate, numpy [n, 4], with the model in eval mode."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            out.append(torch.sigmoid(model(X[i:i + batch_size])[..., 0]))
    return torch.cat(out).numpy() if out else np.zeros((0, 4))


# ----------------------------------------------------------------------------- decision rule

def answers_for(p_ok: np.ndarray, rule: str, threshold: float) -> list[str]:
    """Screening answers from P(acceptable) [n, 4]: see the module docstring for ``top1`` and ``all``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    out = []
    for row in np.asarray(p_ok):
        if rule == "top1":
            k = int(np.argmax(row))
            out.append(LETTERS[k] if row[k] >= threshold else NONE_ANSWER)
        else:
            letters = "".join(LETTERS[k] for k in range(4) if row[k] >= threshold)
            out.append(letters or NONE_ANSWER)
    return out


def rule_scores(p_ok: np.ndarray, ok: np.ndarray, rule: str, thresholds: np.ndarray) -> np.ndarray:
    """The metric (percent) of ``rule`` at every threshold, vectorised; ``ok`` bool [n, 4]."""
    p_ok, ok = np.asarray(p_ok, dtype=float), np.asarray(ok, dtype=bool)
    label_none = ~ok.any(1)
    t = np.asarray(thresholds, dtype=float)[:, None]  # [T, 1]
    if rule == "top1":
        best = p_ok.max(1)
        best_ok = ok[np.arange(len(ok)), p_ok.argmax(1)]
        named = best[None, :] >= t
        correct = np.where(named, best_ok[None, :], label_none[None, :])
    elif rule == "all":
        chosen = p_ok[None, :, :] >= t[:, :, None]  # [T, n, 4]
        named = chosen.any(2)
        all_ok = ~(chosen & ~ok[None]).any(2)
        correct = np.where(named, all_ok, label_none[None, :])
    else:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    return 100.0 * correct.mean(1)


def choose_rule(p_ok: np.ndarray, ok: np.ndarray, rule: str = "auto", threshold: float | None = None) -> dict:
    """The rule and threshold that score best on the given (training) probabilities and labels.

    Thresholds: 0, 1 and the midpoints of the sorted distinct probabilities (at most 400 of them),
    so every distinct decision is tried. Ties go to ``top1``, then to the lower threshold.
    Returns ``{"rule", "threshold", "train_score", "train_scores": {rule: best score}}``.
    """
    rules = RULES if rule == "auto" else (rule,)
    if threshold is not None:
        grid = np.array([threshold])
    else:
        vals = np.unique(np.asarray(p_ok, dtype=float).ravel())
        if len(vals) > 401:
            vals = np.quantile(vals, np.linspace(0, 1, 401))
        grid = np.unique(np.concatenate([[0.0, 1.0], (vals[1:] + vals[:-1]) / 2]))
    best, per_rule = None, {}
    for r in rules:
        s = rule_scores(p_ok, ok, r, grid)
        i = int(np.argmax(s))
        per_rule[r] = float(s[i])
        if best is None or s[i] > best[2]:
            best = (r, float(grid[i]), float(s[i]))
    return {"rule": best[0], "threshold": best[1], "train_score": best[2], "train_scores": per_rule}


# ----------------------------------------------------------------------------- training

def train_model(cfg: BaselineConfig, X, Y, ok: np.ndarray, *, progress: bool = True, log_path=None,
                callback=None, callback_every: int = 100):
    """Train the CNN on ``X``/``Y``/``ok`` (`load_arrays`) within the config's budget; returns (model, log).

    ``callback(step, model)``, if given, runs every ``callback_every`` steps (e.g. a held-out AUC;
    it may switch the model to eval mode, training switches it back)."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    target = torch.cat([torch.from_numpy(ok).float()[..., None], Y], -1)  # [n, 4, 1 + 4]
    weight = torch.ones(target.shape[-1])
    if not cfg.aux_dimensions:
        weight[1:] = 0
    model.train()
    t0, cpu0, losses, order, step = time.time(), time.process_time(), [], np.array([], dtype=int), 0
    log_file = open(log_path, "w") if log_path else None
    bar = tqdm(total=cfg.steps, desc="CNN baseline", unit="step", disable=not progress)
    try:
        for step in range(cfg.steps):
            elapsed = time.time() - t0
            if cfg.max_train_s is not None and elapsed >= cfg.max_train_s:
                break
            # The schedule follows whichever budget (steps or seconds) is further spent.
            done = max(step / cfg.steps, elapsed / cfg.max_train_s if cfg.max_train_s else 0.0)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps)) * 0.5 * (1 + math.cos(math.pi * done))
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(X))])
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            x = X[idx]
            if cfg.flip and rng.random() < 0.5:
                x = x.flip(-1)
            loss = (F.binary_cross_entropy_with_logits(model(x), target[idx], reduction="none") * weight).sum(-1).mean() / weight.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if callback is not None and (step + 1) % callback_every == 0:
                callback(step + 1, model)
                model.train()
            if (step + 1) % 25 == 0:
                mean = float(np.mean(losses[-25:]))
                bar.set_postfix(loss=f"{mean:.3f}")
                if log_file:
                    log_file.write(json.dumps({"step": step + 1, "loss": mean, "seconds": round(time.time() - t0, 2)}) + "\n")
                    log_file.flush()
            bar.update(1)
        else:
            step = cfg.steps
    finally:
        bar.close()
        if log_file:
            log_file.close()
    steps_done = step if step < cfg.steps else cfg.steps
    log = {"steps": steps_done, "epochs": steps_done * cfg.batch_size / len(X), "train_s": time.time() - t0,
           "train_cpu_s": time.process_time() - cpu0,
           "stopped_by": "time" if steps_done < cfg.steps else "steps", "samples": len(X),
           "loss_first": float(np.mean(losses[:25])) if losses else None,
           "loss_last": float(np.mean(losses[-25:])) if losses else None,
           "params": sum(p.numel() for p in model.parameters())}
    return model, log


def save_model(model, cfg: BaselineConfig, out_dir, extra: dict | None = None) -> Path:
    """``out_dir/model.safetensors`` + ``out_dir/baseline.json`` (config and ``extra``)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out_dir / "model.safetensors"))
    (out_dir / "baseline.json").write_text(json.dumps({"config": asdict(cfg), **(extra or {})}, indent=2) + "\n")
    return out_dir / "model.safetensors"


def load_model(out_dir):
    """(model, config, info) from a folder written by `save_model`; the model in eval mode."""
    from safetensors.torch import load_file

    out_dir = Path(out_dir)
    info_path, weights = out_dir / "baseline.json", out_dir / "model.safetensors"
    if not info_path.exists() or not weights.exists():
        raise FileNotFoundError(f"{out_dir} holds no trained baseline (model.safetensors + baseline.json)")
    info = json.loads(info_path.read_text())
    cfg = BaselineConfig(**info["config"])
    model = build_model(cfg)
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return model, cfg, info


def evaluate_baseline(model, cfg: BaselineConfig, data: dict, decision: dict, out_dir=None) -> dict:
    """Score the model on ``data`` (`load_arrays`) with the chosen rule: the `labkit.evaluate.evaluate`
    result dict plus ``auc``; with ``out_dir`` it writes ``predictions.jsonl`` and ``results.json``."""
    from labkit.evaluate import prediction_row

    t0 = time.time()
    p_ok = predict_ok(model, data["X"], cfg.eval_batch_size)
    answers = answers_for(p_ok, decision["rule"], decision["threshold"])
    rows = [prediction_row(sid, a, label, dim, [round(float(v), 5) for v in p])
            for sid, a, label, dim, p in zip(data["ids"], answers, data["answers"], data["dimensions"], p_ok)]
    result = score([r["prediction"] for r in rows], data["answers"], data["dimensions"])
    result["auc"] = candidate_auc(p_ok.tolist(), data["defects"])
    result.update(rule=decision["rule"], threshold=decision["threshold"], eval_s=time.time() - t0)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / "predictions.jsonl", rows)
        (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def train_baseline(data_dir, out_dir, cfg: BaselineConfig | None = None, *, split: str = "test",
                   limit: int | None = None, progress: bool = True) -> dict:
    """Train the CNN on ``cfg.train_split``, choose the decision rule there, evaluate on ``split``.

    Returns the `labkit.evaluate.evaluate`-style result (see the module docstring) plus ``rule``,
    ``threshold``, ``train_score``, ``train_auc``, ``train`` (the training log), ``load_s``,
    ``train_s``, ``eval_s`` and ``wall_s``. ``limit``: only the first N samples of ``split``.
    """
    import torch

    cfg = cfg or BaselineConfig()
    check_config(cfg)
    if split == cfg.train_split:
        raise ValueError(f"the baseline is evaluated on {split!r}, the split it trains on; pick another split")
    threads = torch.get_num_threads()
    try:
        return _train_and_evaluate(data_dir, Path(out_dir), cfg, split, limit, progress)
    finally:
        torch.set_num_threads(threads)  # the next arm of an ablation keeps the process's own setting


def _train_and_evaluate(data_dir, out_dir: Path, cfg: BaselineConfig, split: str, limit, progress: bool) -> dict:
    import torch

    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train = load_arrays(data_dir, cfg.train_split, cfg.image_size, cfg.limit, progress)
    test = load_arrays(data_dir, split, cfg.image_size, limit, progress)
    load_s = time.time() - t0
    model, log = train_model(cfg, train["X"], train["Y"], train["ok"], progress=progress, log_path=out_dir / "train_log.jsonl")
    p_train = predict_ok(model, train["X"], cfg.eval_batch_size)
    decision = choose_rule(p_train, train["ok"], cfg.rule, cfg.threshold)
    train_auc = candidate_auc(p_train.tolist(), train["defects"])["overall"]
    save_model(model, cfg, out_dir, {"decision": decision, "train": log, "train_auc": train_auc,
                                     "data": str(Path(data_dir).resolve()), "split": split})
    result = evaluate_baseline(model, cfg, test, decision, out_dir / "eval")
    result.update(train_score=decision["train_score"], train_scores=decision["train_scores"], train_auc=train_auc,
                  train=log, load_s=load_s, train_s=log["train_s"], wall_s=time.time() - t0, image_size=cfg.image_size,
                  params=log["params"])
    (out_dir / "eval" / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
