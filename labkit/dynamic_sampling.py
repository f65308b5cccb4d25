"""Dynamic sampling for GRPO: keep every step's batch full of informative prompt groups.

A prompt group whose G rewards all tie has zero advantage for every member: it teaches nothing.
Two ways to deal with such groups, chosen by the recipe (``dynamic_sampling: true`` plus
``dynamic_sampling_mode``):

- ``refill`` (default; what verl's DAPO recipe and ms-swift do): over-generate and filter. After
  a generation batch is scored, its tied groups are set aside and further prompts, drawn at
  random from the training data, are generated and scored until the batch again holds its
  configured number of informative groups (``generation_batch_size // num_generations``). At
  most ``dynamic_sampling_max_rounds`` extra rounds run per generation batch; each round draws
  as many prompts as are still missing, scaled up by the share of informative groups seen so
  far (at most one batch's worth). If the cap is reached, the remaining slots keep tied groups,
  which are masked from the loss as in ``mask`` mode (logged as ``informative_fraction`` < 1).
- ``mask``: the tied groups stay in the batch but are dropped from the loss (their completion
  mask is zeroed and the token count of the DAPO normaliser recomputed), so the batch shrinks.

Logged per generation batch (``train_log.jsonl``): ``dynamic_sampling/skipped_fraction`` (tied
groups among all groups generated for the batch, the extra ones included),
``dynamic_sampling/extra_generations`` (completions generated beyond the batch: extra prompts x
G, all processes), ``dynamic_sampling/extra_prompts``, ``dynamic_sampling/rounds`` and
``dynamic_sampling/informative_fraction`` (informative groups in the batch that trains: 1.0 when
filled). In refill mode ``OUTPUT_DIR/dynamic_sampling.jsonl`` gets one line per generation batch
with the same counts and the ids of the prompts kept.

Refill works on TRL's scored output: the rows of the kept groups are taken from each scored
batch and concatenated, prompts left-padded and completions right-padded to a common width
(`merge_scored`). Each group's advantages were computed within the group, so they stay valid.
It needs an indexable training dataset and a per-process batch made of whole groups; otherwise
it warns and falls back to masking. With several processes every process runs the same number
of rounds with the same number of prompts (TRL gathers rewards across processes).

Use it through a recipe (``labkit grpo --recipe R --set dynamic_sampling=true``) or
`labkit.hcm.make_trainer_cls(dynamic_sampling=True, dynamic_sampling_mode="refill")`.
"""
from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

from labkit.jsonl import append_rows

MODES = ("refill", "mask")

# Keys of TRL's scored batch (`GRPOTrainer._generate_and_score_completions`) by padding side.
PROMPT_SIDE = ("prompt_ids", "prompt_mask")
COMPLETION_SIDE = ("completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
                   "sampling_per_token_logps", "importance_sampling_ratio", "tool_mask")
FULL_SEQUENCE = ("token_type_ids", "mm_token_type_ids")  # prompt part then completion part
SCALARS = ("num_items_in_batch",)


def tied_groups(advantages, group_size: int, tolerance: float = 1e-6):
    """A bool tensor, one per group of ``group_size`` rows: True where every advantage is ~0 (rewards tie)."""
    return (advantages.view(-1, group_size).abs() <= tolerance).all(dim=1)


def _pad(tensor, width: int, value, side: str):
    import torch

    extra = width - tensor.shape[1]
    if extra <= 0:
        return tensor
    filler = torch.full((tensor.shape[0], extra, *tensor.shape[2:]), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([filler, tensor] if side == "left" else [tensor, filler], dim=1)


def take_rows(batch: dict, rows: list[int], n_rows: int) -> dict:
    """The given rows of a scored batch whose per-sample fields are row-aligned (pixel values split per sample)."""
    out = {}
    for key, value in batch.items():
        if value is None or key in SCALARS or getattr(value, "ndim", 1) == 0:
            out[key] = value
            continue
        if len(value) != n_rows:
            raise NotImplementedError(f"dynamic sampling: field {key!r} has {len(value)} entries for {n_rows} rows; "
                                      "this model's inputs cannot be regrouped")
        out[key] = value[rows] if hasattr(value, "index_select") else [value[i] for i in rows]
    return out


def merge_scored(parts: list[dict], pad_token_id: int) -> dict:
    """Concatenate row-aligned scored batches: prompts left-padded, completions right-padded."""
    import torch

    keys = list(parts[0])
    if any(list(p) != keys for p in parts[1:]):
        raise NotImplementedError("dynamic sampling: scored batches with different fields cannot be merged")
    prompt_width = max(p["prompt_ids"].shape[1] for p in parts)
    completion_width = max(p["completion_ids"].shape[1] for p in parts)
    out = {}
    for key in keys:
        values = [p[key] for p in parts]
        if values[0] is None or key in SCALARS:
            out[key] = values[0]
        elif isinstance(values[0], list):
            out[key] = [v for part in values for v in part]
        elif key in PROMPT_SIDE:
            value = pad_token_id if key == "prompt_ids" else 0
            out[key] = torch.cat([_pad(v, prompt_width, value, "left") for v in values])
        elif key in COMPLETION_SIDE and values[0].ndim >= 2:
            value = pad_token_id if key == "completion_ids" else 0
            width = max(v.shape[1] for v in values)  # sequence-level ratios are (B, 1) everywhere
            out[key] = torch.cat([_pad(v, width, value, "right") for v in values])
        elif key in FULL_SEQUENCE:
            pieces = []
            for v, p in zip(values, parts):
                cut = p["prompt_ids"].shape[1]
                pieces.append(torch.cat([_pad(v[:, :cut], prompt_width, 0, "left"),
                                         _pad(v[:, cut:], completion_width, 0, "right")], dim=1))
            out[key] = torch.cat(pieces)
        elif hasattr(values[0], "ndim") and values[0].ndim >= 2 and len({v.shape[1:] for v in values}) > 1:
            raise NotImplementedError(f"dynamic sampling: field {key!r} has different widths and no known padding")
        else:
            out[key] = torch.cat(values)
    return out


class DynamicSamplingMixin:
    """Mix into `labkit.grpo.LabGRPOTrainer` (see `labkit.hcm.make_trainer_cls`); settings as class attributes."""

    dynamic_sampling: bool = True
    dynamic_sampling_mode: str = "refill"
    dynamic_sampling_max_rounds: int = 4
    tie_tolerance: float = 1e-6
    dynamic_sampling_log: str = "dynamic_sampling.jsonl"

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.dynamic_sampling:
            return output
        mode = "train" if self.model.training else "eval"
        G = self.num_generations if mode == "train" else self.num_generations_eval
        if output["advantages"].numel() % G:
            warnings.warn(f"dynamic sampling: local batch of {output['advantages'].numel()} is not a multiple of G={G}; "
                          "not applied", stacklevel=2)
            return output
        if mode == "train" and self.dynamic_sampling_mode == "refill":
            reason = self._refill_unsupported()
            if reason is None:
                try:
                    return self._refill(inputs, output, G)
                except NotImplementedError as exc:
                    reason = str(exc)
            if not getattr(self, "_ds_warned", False):
                warnings.warn(f"dynamic sampling: refill not possible ({reason}); masking tied groups instead", stacklevel=2)
                self._ds_warned = True
        return self._mask_tied(output, G, mode)

    # ------------------------------------------------------------------ mask
    def _mask_tied(self, output, G: int, mode: str, tied=None, log: bool = True):
        if tied is None:
            tied = tied_groups(output["advantages"], G, self.tie_tolerance)
        keep = (~tied).repeat_interleave(G).to(output["completion_mask"].dtype).unsqueeze(1)
        output["completion_mask"] = output["completion_mask"] * keep
        loss_mask = output["completion_mask"] if output.get("tool_mask") is None else output["completion_mask"] * output["tool_mask"]
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        if log:
            self._metrics[mode]["dynamic_sampling/skipped_fraction"].append(tied.float().mean().item())
        return output

    # ------------------------------------------------------------------ refill
    def _refill_unsupported(self) -> str | None:
        ds = self.train_dataset
        if ds is None or not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__"):
            return "the training dataset cannot be indexed"
        return None

    def _global(self, values: list[float], op: str) -> list[float]:
        """Sum or max of small per-process counts over all processes."""
        import torch

        t = self.accelerator.gather(torch.tensor([values], dtype=torch.float64, device=self.accelerator.device))
        t = t.view(-1, len(values))
        return (t.sum(dim=0) if op == "sum" else t.max(dim=0).values).tolist()

    def _draw_prompts(self, n: int, avoid: set) -> list[dict]:
        """``n`` training rows drawn at random without replacement (a fresh permutation when one is used up)."""
        ds = self.train_dataset
        if not hasattr(self, "_ds_rng"):
            self._ds_rng = random.Random(self.args.seed * 7919 + self.accelerator.process_index + 1)
            self._ds_order = []
        rows, skipped = [], 0
        while len(rows) < n:
            if not self._ds_order:
                self._ds_order = list(range(len(ds)))
                self._ds_rng.shuffle(self._ds_order)
            row = ds[self._ds_order.pop()]
            # Prefer prompts that are not already in this batch; give up avoiding after a full pass.
            if isinstance(row, dict) and row.get("id") in avoid and skipped < len(ds):
                skipped += 1
                continue
            rows.append(row)
        return rows

    def _refill(self, inputs, output, G: int):
        from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

        n_rows = output["advantages"].numel()
        n_groups = n_rows // G
        tied = tied_groups(output["advantages"], G, self.tie_tolerance)
        parts = [(list(inputs), output, tied)]
        drawn, n_tied, extra_prompts, rounds = n_groups, int(tied.sum()), 0, 0
        avoid = {row.get("id") for row in inputs if isinstance(row, dict)}
        while rounds < self.dynamic_sampling_max_rounds:
            informative = drawn - n_tied
            missing = max(0, n_groups - informative)
            rate = max(informative / drawn, 1.0 / n_groups)
            want = min(n_groups, max(missing, math.ceil(missing / rate))) if missing else 0
            # Every process generates the same number of prompts (TRL gathers rewards across processes).
            n_draw = int(self._global([want], "max")[0])
            if n_draw == 0:
                break
            rounds += 1
            prompts = self._draw_prompts(n_draw, avoid)
            avoid.update(row.get("id") for row in prompts if isinstance(row, dict))
            extra_inputs = [dict(row) for row in prompts for _ in range(G)]
            extra = super()._generate_and_score_completions(extra_inputs)
            extra_tied = tied_groups(extra["advantages"], G, self.tie_tolerance)
            parts.append((extra_inputs, extra, extra_tied))
            drawn += n_draw
            n_tied += int(extra_tied.sum())
            extra_prompts += n_draw
        # Informative groups first (the original batch's, then the refills'), then tied ones if still short.
        chosen = [(p, g) for p, (_, _, t) in enumerate(parts) for g in range(len(t)) if not t[g]][:n_groups]
        if len(chosen) < n_groups:
            chosen += [(0, g) for g in range(n_groups) if tied[g]][: n_groups - len(chosen)]
        selected, kept_ids, kept_tied = [], [], []
        for p, (rows_in, scored, t) in enumerate(parts):
            groups = [g for q, g in chosen if q == p]
            if not groups:
                continue
            rows = [g * G + j for g in groups for j in range(G)]
            selected.append(take_rows(split_pixel_values_by_grid(scored), rows, len(t) * G))
            kept_ids += [rows_in[g * G].get("id") if isinstance(rows_in[g * G], dict) else None for g in groups]
            kept_tied += [bool(t[g]) for g in groups]
        merged = unsplit_pixel_values_by_grid(merge_scored(selected, self._tokenizer.pad_token_id))
        import torch

        still_tied = torch.tensor(kept_tied, device=merged["advantages"].device)
        merged = self._mask_tied(merged, G, "train", tied=still_tied, log=False)
        tot = self._global([drawn, n_tied, extra_prompts, n_groups - len([t for t in kept_tied if t]), n_groups], "sum")
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/skipped_fraction"].append(tot[1] / tot[0])
        metrics["dynamic_sampling/extra_prompts"].append(tot[2])
        metrics["dynamic_sampling/extra_generations"].append(tot[2] * G)
        metrics["dynamic_sampling/rounds"].append(rounds)
        metrics["dynamic_sampling/informative_fraction"].append(tot[3] / tot[4])
        if self.accelerator.is_main_process and self.dynamic_sampling_log:
            row = {"step": self.state.global_step, "target_groups": n_groups, "informative_groups": n_groups - sum(kept_tied),
                   "drawn_groups": drawn, "tied_groups": n_tied, "extra_prompts": extra_prompts,
                   "extra_generations": extra_prompts * G, "rounds": rounds, "ids": kept_ids}
            path = Path(self.args.output_dir) / self.dynamic_sampling_log
            path.parent.mkdir(parents=True, exist_ok=True)
            append_rows(path, [row], default=str)
        return merged
