"""Dynamic sampling (labkit.dynamic_sampling): the refill mode keeps every step's batch full of
informative groups in a real GRPO run; merging scored batches pads prompts and completions right."""
from __future__ import annotations

import json

import pytest
import torch

from labkit.dynamic_sampling import merge_scored, take_rows, tied_groups


def test_tied_groups_and_merge_pad_each_side():
    # Groups of 2: the first ties (zero advantages), the second does not.
    assert tied_groups(torch.tensor([0.0, 0.0, 0.7, -0.7]), 2).tolist() == [True, False]
    a = {"prompt_ids": torch.tensor([[5, 6], [7, 8]]), "prompt_mask": torch.ones(2, 2, dtype=torch.long),
         "completion_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]), "completion_mask": torch.ones(2, 3, dtype=torch.long),
         "advantages": torch.tensor([0.5, -0.5]), "num_images": [5, 5], "num_items_in_batch": torch.tensor(6)}
    b = {"prompt_ids": torch.tensor([[9, 9, 9]]), "prompt_mask": torch.ones(1, 3, dtype=torch.long),
         "completion_ids": torch.tensor([[3]]), "completion_mask": torch.ones(1, 1, dtype=torch.long),
         "advantages": torch.tensor([1.0]), "num_images": [5], "num_items_in_batch": torch.tensor(1)}
    merged = merge_scored([take_rows(a, [1], 2), b], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[0, 7, 8], [9, 9, 9]]          # left-padded prompts
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[4, 5, 6], [3, 0, 0]]      # right-padded completions
    assert merged["completion_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert merged["advantages"].tolist() == [-0.5, 1.0] and merged["num_images"] == [5, 5]
    with pytest.raises(NotImplementedError, match="'pixel_values'"):
        take_rows({"pixel_values": torch.zeros(3, 4), "advantages": torch.zeros(2)}, [0], 2)


@pytest.mark.slow
def test_refill_fills_every_batch_with_informative_groups(tiny_internvl, synth_dataset, tmp_path):
    # 8 prompts, G=2, 2 groups per step. A reward that ties for 3 chosen prompts: with refill every
    # step trains on 2 informative groups, the extra prompts and generations are counted and logged.
    from labkit import rewards as R
    from labkit.data import load_split
    from labkit.hcm import run_hcm_grpo
    from labkit.recipes import recipe_from_dict

    ids = load_split(synth_dataset, "train", validate=False, check_images=False)["id"][:8]
    tie_ids = {ids[0], ids[3], ids[6]}
    seen = []

    def recorder(completions, id=None, **kw):
        seen.extend(id)
        return [1.0 if sid in tie_ids else float(j % 2) for j, sid in enumerate(id)]

    mp = pytest.MonkeyPatch()
    mp.setitem(R.REWARDS, "recorder", recorder)
    recipe = recipe_from_dict({
        "arm": "ds", "stage": "grpo", "model": str(tiny_internvl), "data": str(synth_dataset),
        "output_dir": str(tmp_path / "run"), "limit": 8, "rewards": {"recorder": 1.0},
        "dynamic_sampling": True, "dynamic_sampling_mode": "refill", "dynamic_sampling_max_rounds": 4,
        "conversion": {"form": "cot", "image_size": 32},
        "training": {"num_generations": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                     "max_completion_length": 8, "learning_rate": 1e-4, "num_train_epochs": 1, "logging_steps": 1, "save_strategy": "no",
                     "beta": 0.0, "loss_type": "dapo", "log_completions": False, "gradient_checkpointing": False,
                     "disable_tqdm": True},
    })
    try:
        run_hcm_grpo(recipe)
    finally:
        mp.undo()
    rows = [json.loads(line) for line in (tmp_path / "run" / "dynamic_sampling.jsonl").read_text().splitlines()]
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    groups = seen[::2]
    assert all(a == b for a, b in zip(seen[::2], seen[1::2]))  # each prompt's G rows in a row
    assert len(rows) == 4  # one per generation batch (8 prompts / 2 per step)
    for row in rows:
        assert row["informative_groups"] == row["target_groups"] == 2
        assert len(row["ids"]) == 2 and not set(row["ids"]) & tie_ids
    # Every group the reward saw is either in the sampler's 8 or an extra draw; ties counted right.
    assert sum(r["drawn_groups"] for r in rows) == len(groups) == 8 + sum(r["extra_prompts"] for r in rows)
    assert sum(r["tied_groups"] for r in rows) == sum(g in tie_ids for g in groups)
    assert sum(r["extra_prompts"] for r in rows) >= 3  # the 3 tied prompts of the epoch had to be replaced
    logged = [r for r in log if "dynamic_sampling/informative_fraction" in r]
    assert len(logged) == 4 and all(r["dynamic_sampling/informative_fraction"] == 1.0 for r in logged)
    assert [r["dynamic_sampling/extra_generations"] for r in logged] == [2 * r["extra_prompts"] for r in rows]
    assert [r["dynamic_sampling/skipped_fraction"] for r in logged] == pytest.approx(
        [r["tied_groups"] / r["drawn_groups"] for r in rows])
