"""Hard Cases Mining (HCM): mine hard cases with the evaluator, replay them in ONE GRPO run.

The paper (Section 4.2, Tables 6-7) runs the SFT model over the training split: a sample it
answers correctly is *easy*, a wrong one is *hard*. DPA-GRPO then trains 3 epochs on all data
and 2 more epochs on all data plus the hard cases again. This module provides the three pieces:

1. Mining (`mine_hard`, CLI ``labkit mine-hard --model M --data D --split train --out RUN``).
   It calls `labkit.evaluate.evaluate` on the split, so "correct" means exactly what the
   evaluation metric means (`labkit.metrics.is_correct`). The run folder gets:

   - ``predictions.jsonl`` and the evaluator's score files (written by the evaluator);
   - ``hard_cases.jsonl``: one line per sample ``{"id", "response", "prediction", "answer",
     "dimension", "hard": bool}`` (hard = wrong); the annotation store imports this file as its
     hard-case queue;
   - ``mining.json``: ``{"model", "data", "split", "n", "hard", "easy", "hard_fraction",
     "unparsed", "score"}``.

2. The HCM schedule as a train sampler (`HCMSampler`) plugged into TRL's `GRPOTrainer`
   through `_get_train_sampler` (mixin `HCMSamplerMixin`). It keeps TRL's grouping contract
   (see `trl.trainer.utils.RepeatSampler`): the prompts of a logical epoch are shuffled and cut
   into chunks of ``generation_batch_size // num_generations`` prompts (an incomplete last
   chunk is dropped, as TRL does); each chunk is repeated ``num_iterations * steps_per_generation``
   times and each prompt index ``num_generations`` times in a row.

   Why ONE trainer epoch: `transformers.Trainer` computes the number of optimizer steps once,
   from ``len(dataloader)``, and runs every epoch for that many steps. HCM's late epochs have a
   different size than the early ones ("all + hard" is longer, "hard only" shorter), so a
   sampler that changed its length per trainer epoch would be cut short or run dry, and the
   learning-rate schedule would be wrong. Padding the early epochs up to the longest one would
   give the early phase extra random draws, i.e. more steps than the DPA-GRPO arm it is
   compared with. So the sampler lays the whole schedule (``switch_epoch`` epochs of all data,
   then ``late_epochs`` epochs of the late mix) end to end as ONE trainer epoch whose length is
   the exact sum; `run_hcm_grpo` sets ``num_train_epochs=1``. Step count, LR schedule and
   optimizer state are exactly those of one continuous run. ``set_epoch(e)`` (called by the
   trainer at each trainer epoch) reseeds the shuffles, so a user who asks for several trainer
   epochs replays the whole schedule with fresh orders. The paper's *logical* epochs are
   logged to ``OUTPUT_DIR/hcm_epochs.jsonl`` (one line per logical epoch: phase, mix, prompts
   drawn, hard, easy, first and last optimizer step).

   Late-epoch mixes (Table 7): ``hard`` (hard cases only), ``easy`` (easy only), ``all``,
   ``all+random`` (all + k random extra draws from all data; k defaults to the number of hard
   cases, as in the paper's "all + 434 random"), ``all+hard`` (the paper's HCM).

3. Dynamic sampling (`labkit.dynamic_sampling.DynamicSamplingMixin`, recipe
   ``dynamic_sampling: true``): groups whose G rewards all tie carry no learning signal. The
   default ``dynamic_sampling_mode: refill`` over-generates and filters as verl's DAPO recipe
   does (further prompts until the batch holds its number of informative groups, at most
   ``dynamic_sampling_max_rounds`` extra rounds); ``mask`` only drops them from the loss.
   `make_trainer_cls` mixes it in; see that module for what is logged.

Run it::

    labkit mine-hard --model runs/small/sft/final --data data/synth --split train --out runs/small/mine
    labkit grpo --recipe recipes/small/hcm-grpo.yaml    # recipe.hcm non-empty -> run_hcm_grpo
"""
from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

from labkit.dynamic_sampling import MODES as DS_MODES
from labkit.dynamic_sampling import DynamicSamplingMixin  # noqa: F401  (re-exported: labkit.hcm.DynamicSamplingMixin)
from labkit.jsonl import read_rows
from labkit.metrics import is_correct, parse_answer

LATE_MIXES = ("hard", "easy", "all", "all+random", "all+hard")


# ----------------------------------------------------------------------------- mining

def partition(predictions: Sequence[dict]) -> list[dict]:
    """Easy/hard rows from evaluator predictions: hard = not correct under the metric.

    Uses the evaluator's ``correct`` field when present, else recomputes it with
    `labkit.metrics.is_correct` from ``prediction`` and ``answer`` (the same function).
    """

    rows = []
    for p in predictions:
        if "answer" not in p or "id" not in p:
            raise ValueError(f"prediction row without id/answer: {sorted(p)}")
        pred = p.get("prediction")
        if "correct" in p:
            correct = bool(p["correct"])
        else:
            correct = is_correct(None if pred is None else parse_answer(str(pred)), p["answer"])
        rows.append({
            "id": p["id"],
            "response": p.get("response", ""),
            "prediction": pred,
            "answer": p["answer"],
            "dimension": p.get("dimension", ""),
            "hard": not correct,
        })
    return rows


def mine_hard(model, data_dir, split: str = "train", out=None, *, form: str = "cot", layout: str = "separate",
              variant: str = "eval", image_size: int | None = None, prompt: str = "full", batch_size: int = 8,
              **eval_kwargs) -> dict:
    """Run ``model`` over ``data_dir/split`` with the evaluator; write hard_cases.jsonl and mining.json.

    Returns the mining summary (the content of mining.json). Extra keyword arguments go to
    `labkit.evaluate.evaluate` (e.g. ``max_new_tokens``, ``limit``).
    """
    from labkit.evaluate import evaluate

    if out is None:
        raise ValueError("mine_hard needs an output folder (out=)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores = evaluate(model, data_dir, split, form=form, layout=layout, variant=variant, image_size=image_size,
                      prompt=prompt, batch_size=batch_size, out_dir=out, **eval_kwargs)
    pred_path = out / "predictions.jsonl"
    if not pred_path.exists():
        raise FileNotFoundError(f"the evaluator wrote no {pred_path}")
    rows = partition(read_rows(pred_path, missing_ok=False))
    (out / "hard_cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    n_hard = sum(r["hard"] for r in rows)
    summary = {
        "model": str(model), "data": str(data_dir), "split": split, "n": len(rows),
        "hard": n_hard, "easy": len(rows) - n_hard,
        "hard_fraction": n_hard / len(rows) if rows else float("nan"),
        "unparsed": sum(r["prediction"] is None for r in rows),
        "score": {k: scores.get(k) for k in ("overall", "random_baseline", "n", "unparsed")} if isinstance(scores, dict) else None,
        "conversion": {"form": form, "layout": layout, "variant": variant, "image_size": image_size, "prompt": prompt},
    }
    (out / "mining.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_hard_ids(path) -> list[str]:
    """Hard ids from a mining folder or its hard_cases.jsonl."""
    path = Path(path)
    if path.is_dir():
        path = path / "hard_cases.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no hard cases at {path} (run `labkit mine-hard` first)")
    return [r["id"] for r in read_rows(path, missing_ok=False) if r.get("hard")]


# ----------------------------------------------------------------------------- schedule

@dataclass
class HCMConfig:
    """The HCM schedule (recipe key ``hcm``)."""

    hard_cases: str = field(default="", metadata={"help": "mining folder or hard_cases.jsonl (labkit mine-hard); may use {run_dir}"})
    switch_epoch: int = field(default=3, metadata={"help": "epochs on all data before the late mix starts"})
    late_epochs: int = field(default=2, metadata={"help": "epochs of the late mix after the switch"})
    late_mix: str = field(default="all+hard", metadata={"help": "hard | easy | all | all+random | all+hard (Table 7)"})
    k_random: int | None = field(default=None, metadata={"help": "extra random draws for all+random; null: as many as hard cases"})
    log_file: str = field(default="hcm_epochs.jsonl", metadata={"help": "per logical epoch counts, in the output folder"})

    @classmethod
    def from_dict(cls, d: dict | None) -> "HCMConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"hcm: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.late_mix not in LATE_MIXES:
            raise ValueError(f"hcm.late_mix must be one of {', '.join(LATE_MIXES)}, got {self.late_mix!r}")
        if self.switch_epoch < 0 or self.late_epochs < 0 or self.switch_epoch + self.late_epochs < 1:
            raise ValueError(f"hcm: switch_epoch ({self.switch_epoch}) and late_epochs ({self.late_epochs}) must be >= 0 with at least one epoch")
        if self.k_random is not None and self.k_random < 0:
            raise ValueError(f"hcm.k_random must be >= 0, got {self.k_random}")

    @property
    def total_epochs(self) -> int:
        return self.switch_epoch + self.late_epochs


def epoch_pool(n_items: int, hard: set[int], mix: str, rng: random.Random, k_random: int | None = None) -> list[int]:
    """The shuffled prompt indices of one logical epoch under ``mix``."""
    everything = list(range(n_items))
    if mix == "all":
        pool = everything
    elif mix == "hard":
        pool = sorted(hard)
    elif mix == "easy":
        pool = [i for i in everything if i not in hard]
    elif mix == "all+hard":
        pool = everything + sorted(hard)
    elif mix == "all+random":
        k = len(hard) if k_random is None else k_random
        # Without replacement while possible, like the hard cases (each at most once more).
        extra = rng.sample(everything, k) if k <= n_items else [rng.randrange(n_items) for _ in range(k)]
        pool = everything + extra
    else:
        raise ValueError(f"unknown late mix {mix!r}; expected one of {', '.join(LATE_MIXES)}")
    pool = list(pool)
    rng.shuffle(pool)
    return pool


class HCMSampler:
    """A TRL-compatible train sampler running the whole HCM schedule as one trainer epoch.

    Parameters mirror `trl.trainer.utils.RepeatSampler`: ``mini_repeat_count`` (= G),
    ``batch_size`` (unique prompts per generation batch), ``repeat_count``
    (``num_iterations * steps_per_generation``). ``hard_indices`` are dataset positions.
    ``steps_per_chunk`` (optimizer steps per generation chunk) is only used for the step
    ranges written to the log.
    """

    def __init__(self, n_items: int, hard_indices: Sequence[int], config: HCMConfig, *, mini_repeat_count: int,
                 batch_size: int = 1, repeat_count: int = 1, seed: int = 0, log_path=None, steps_per_chunk: float | None = None):
        if n_items <= 0:
            raise ValueError("HCMSampler needs a non-empty dataset")
        bad = [i for i in hard_indices if not 0 <= i < n_items]
        if bad:
            raise ValueError(f"hard indices out of range [0, {n_items}): {bad[:5]}")
        config.validate()
        self.n_items = n_items
        self.hard = set(int(i) for i in hard_indices)
        self.config = config
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.seed = seed
        self.epoch = 0
        self.log_path = Path(log_path) if log_path else None
        self.steps_per_chunk = steps_per_chunk
        if config.late_epochs and config.late_mix in ("hard", "easy"):
            size = len(self.hard) if config.late_mix == "hard" else n_items - len(self.hard)
            if size < batch_size:
                raise ValueError(f"late mix {config.late_mix!r} has {size} prompts, fewer than one generation batch "
                                 f"({batch_size} prompts): the late epochs would be empty")

    # TRL/accelerate call this at each trainer epoch (see transformers.Trainer._run_epoch).
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def plan(self, epoch: int | None = None) -> list[dict]:
        """The logical epochs of one trainer epoch: phase, mix and the chunked prompt indices."""
        epoch = self.epoch if epoch is None else epoch
        rng = random.Random(self.seed * 1_000_003 + epoch)
        out = []
        for e in range(self.config.total_epochs):
            late = e >= self.config.switch_epoch
            mix = self.config.late_mix if late else "all"
            pool = epoch_pool(self.n_items, self.hard, mix, rng, self.config.k_random)
            n_chunks = len(pool) // self.batch_size
            pool = pool[: n_chunks * self.batch_size]  # drop the incomplete chunk, like RepeatSampler
            hard = sum(i in self.hard for i in pool)
            out.append({"epoch": e + 1, "phase": "late" if late else "early", "mix": mix, "indices": pool,
                        "prompts": len(pool), "hard": hard, "easy": len(pool) - hard, "chunks": n_chunks})
        return out

    def epoch_log(self, epoch: int | None = None) -> list[dict]:
        """`plan` without the indices, with optimizer-step ranges when ``steps_per_chunk`` is known."""
        rows, chunk0 = [], 0
        for p in self.plan(epoch):
            row = {k: v for k, v in p.items() if k != "indices"}
            row["late_mix"] = self.config.late_mix
            row["trainer_epoch"] = self.epoch if epoch is None else epoch
            if self.steps_per_chunk:
                row["first_step"] = int(math.floor(chunk0 * self.steps_per_chunk)) + 1
                row["last_step"] = int(math.ceil((chunk0 + p["chunks"]) * self.steps_per_chunk))
            chunk0 += p["chunks"]
            rows.append(row)
        return rows

    def write_log(self) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Rewritten whole at each trainer epoch, so a resumed run does not duplicate lines.
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in self.epoch_log()))

    def __iter__(self) -> Iterator[int]:
        plan = self.plan()
        self.write_log()
        for p in plan:
            idx = p["indices"]
            for c in range(0, len(idx), self.batch_size):
                chunk = idx[c: c + self.batch_size]
                for _ in range(self.repeat_count):
                    for i in chunk:
                        for _ in range(self.mini_repeat_count):
                            yield i

    def __len__(self) -> int:
        # Constant across trainer epochs: pool sizes do not depend on the shuffle.
        return sum(p["prompts"] for p in self.plan(0)) * self.mini_repeat_count * self.repeat_count


# ----------------------------------------------------------------------------- trainer mixins

class HCMSamplerMixin:
    """Replaces GRPOTrainer's RepeatSampler by `HCMSampler`. Set ``hcm_config`` and ``hcm_hard_ids``
    as class attributes (see `make_trainer_cls`)."""

    hcm_config: HCMConfig | None = None
    hcm_hard_ids: Sequence[str] = ()

    def _get_train_sampler(self, dataset=None):
        if self.hcm_config is None:
            return super()._get_train_sampler(dataset)
        if dataset is None:
            dataset = self.train_dataset
        if "id" not in dataset.column_names:
            raise ValueError("HCM needs an 'id' column in the GRPO dataset to find the hard cases")
        ids = list(dataset["id"])
        pos = {sid: i for i, sid in enumerate(ids)}
        hard_ids = list(self.hcm_hard_ids)
        missing = [h for h in hard_ids if h not in pos]
        if hard_ids and len(missing) == len(hard_ids):
            raise ValueError(f"none of the {len(hard_ids)} hard-case ids is in the training data (e.g. {missing[0]!r}); "
                             "was mining run on the same split?")
        if missing:
            warnings.warn(f"{len(missing)} hard-case ids are not in the training data and are ignored", stacklevel=2)
        hard_idx = [pos[h] for h in hard_ids if h in pos]
        args = self.args
        batch = args.generation_batch_size // self.num_generations
        # One generation chunk feeds steps_per_generation micro-batches, repeated num_iterations
        # times; an optimizer step takes gradient_accumulation_steps micro-batches.
        steps_per_chunk = self.num_iterations * args.steps_per_generation / args.gradient_accumulation_steps
        sampler = HCMSampler(
            len(ids), hard_idx, self.hcm_config,
            mini_repeat_count=self.num_generations, batch_size=batch,
            repeat_count=self.num_iterations * args.steps_per_generation,
            seed=args.seed, log_path=Path(args.output_dir) / self.hcm_config.log_file,
            steps_per_chunk=steps_per_chunk,
        )
        if self.accelerator.is_main_process:
            sampler.write_log()
        return sampler


def make_trainer_cls(base=None, *, hcm: HCMConfig | None = None, hard_ids: Sequence[str] = (), dynamic_sampling: bool = False,
                     dynamic_sampling_mode: str = "refill", dynamic_sampling_max_rounds: int = 4):
    """A trainer class: ``base`` (default `labkit.grpo.LabGRPOTrainer`) with the HCM sampler and/or
    dynamic sampling (`labkit.dynamic_sampling`, ``refill`` or ``mask``) mixed in."""
    if base is None:
        from labkit.grpo import LabGRPOTrainer as base  # noqa: N813
    bases, attrs = [], {}
    if hcm is not None:
        bases.append(HCMSamplerMixin)
        attrs.update(hcm_config=hcm, hcm_hard_ids=tuple(hard_ids))
    if dynamic_sampling:
        bases.append(DynamicSamplingMixin)
        if dynamic_sampling_mode not in DS_MODES:
            raise ValueError(f"dynamic_sampling_mode must be one of {', '.join(DS_MODES)}, got {dynamic_sampling_mode!r}")
        attrs.update(dynamic_sampling=True, dynamic_sampling_mode=dynamic_sampling_mode,
                     dynamic_sampling_max_rounds=int(dynamic_sampling_max_rounds))
    if not bases:
        return base
    name = ("HCM" if hcm is not None else "") + ("DS" if dynamic_sampling else "") + base.__name__
    return type(name, (*bases, base), attrs)


def _ds_kwargs(recipe) -> dict:
    return {"dynamic_sampling": bool(recipe.dynamic_sampling), "dynamic_sampling_mode": recipe.dynamic_sampling_mode,
            "dynamic_sampling_max_rounds": recipe.dynamic_sampling_max_rounds}


def run_hcm_grpo(recipe, *, callbacks=None, resume: bool | None = None) -> Path:
    """Run a GRPO recipe with HCM (``recipe.hcm`` non-empty) and/or dynamic sampling
    (``recipe.dynamic_sampling``) through `labkit.grpo.run_grpo`.

    With HCM, ``num_train_epochs`` is set to 1: the sampler holds the whole schedule (see the
    module docstring). Without either option this is plain `run_grpo`.
    """
    from labkit.grpo import LabGRPOTrainer, run_grpo

    if not recipe.hcm:
        cls = make_trainer_cls(LabGRPOTrainer, **_ds_kwargs(recipe))
        return run_grpo(recipe, trainer_cls=cls, callbacks=callbacks, resume=resume)
    cfg = HCMConfig.from_dict(recipe.hcm)
    if not cfg.hard_cases:
        raise ValueError(f"recipe {recipe.arm!r}: hcm.hard_cases is empty (a mining folder or hard_cases.jsonl)")
    cfg.hard_cases = cfg.hard_cases.replace("{run_dir}", str(recipe.run_dir)).replace("{arm}", recipe.arm)
    hard_ids = load_hard_ids(cfg.hard_cases)
    given = recipe.training.get("num_train_epochs")
    if given not in (None, 1, 1.0):
        warnings.warn(f"recipe {recipe.arm!r}: training.num_train_epochs={given} replaced by 1; the HCM schedule "
                      f"has {cfg.total_epochs} logical epochs (hcm.switch_epoch + hcm.late_epochs)", stacklevel=2)
    recipe.training["num_train_epochs"] = 1
    recipe.training.pop("max_steps", None)
    cls = make_trainer_cls(LabGRPOTrainer, hcm=cfg, hard_ids=hard_ids, **_ds_kwargs(recipe))
    print(f"HCM: {len(hard_ids)} hard cases from {cfg.hard_cases}; {cfg.switch_epoch} epochs of all data, "
          f"then {cfg.late_epochs} of {cfg.late_mix}")
    return run_grpo(recipe, trainer_cls=cls, callbacks=callbacks, resume=resume)


def config_dict(cfg: HCMConfig) -> dict[str, Any]:
    return asdict(cfg)
