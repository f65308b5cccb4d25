"""SFT and GRPO on the tiny models: the loss falls, freezing holds bit for bit, GRPO logs each
reward's mean (and the means match the logged completions), resume continues at the right
step, and the train-sampler hook used by hard-case mining is honoured."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from labkit.recipes import recipe_from_dict
from labkit.training import PARTS, last_checkpoint, model_parts, read_log

pytestmark = pytest.mark.slow

CPU = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False, "report_to": "none",
       "dataloader_num_workers": 0, "disable_tqdm": True}


def sft_recipe(model, data, out, **training):
    t = {**CPU, "num_train_epochs": 6, "per_device_train_batch_size": 2, "learning_rate": 3e-3,
         "lr_scheduler_type": "constant", "logging_steps": 1, "save_strategy": "no", "max_length": None,
         "assistant_only_loss": True}
    t.update(training)
    return recipe_from_dict({
        "arm": "sft", "stage": "sft", "model": str(model), "data": str(data), "run_dir": str(out),
        "conversion": {"form": "cot", "layout": "separate", "variant": "train", "image_size": 32},
        "freeze": {"vision": True, "projector": True, "language": False}, "training": t,
    })


def grpo_recipe(model, data, out, rewards, arm="grpo", **training):
    t = {**CPU, "num_train_epochs": 1, "per_device_train_batch_size": 4, "num_generations": 4,
         "max_completion_length": 16, "beta": 0.04, "loss_type": "grpo", "top_k": 3, "top_p": 0.8,
         "temperature": 1.0, "learning_rate": 1e-3, "logging_steps": 1, "save_strategy": "no",
         "num_completions_to_print": 0}
    t.update(training)
    return recipe_from_dict({
        "arm": arm, "stage": "grpo", "model": str(model), "data": str(data), "run_dir": str(out),
        "conversion": {"image_size": 32}, "rewards": rewards, "training": t,
    })


def snapshot(model_dir):
    from labkit.models import load

    model, _ = load(model_dir)
    return {part: {n: p.detach().clone() for n, p in params.items()} for part, params in model_parts(model).items()}


def test_sft_lowers_loss_and_keeps_frozen_parts(tiny_internvl, handmade_dataset, tmp_path):
    # SFT on 4 samples for 12 steps: the assistant-only loss falls; ViT and projector are
    # bit-identical after training while the language model changed; final/ reloads.
    from labkit.models import load
    from labkit.sft import run_sft

    recipe = sft_recipe(tiny_internvl, handmade_dataset, tmp_path)
    before = snapshot(tiny_internvl)
    final = run_sft(recipe)
    after = snapshot(final)
    for part in ("vision", "projector"):
        assert before[part].keys() == after[part].keys()
        assert all(torch.equal(before[part][n], after[part][n]) for n in before[part]), part
    changed = [n for n in before["language"] if not torch.equal(before["language"][n], after["language"][n])]
    assert len(changed) > len(before["language"]) // 2
    losses = [row["loss"] for row in read_log(recipe.output_path / "train_log.jsonl") if "loss" in row]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    info = json.loads((final / "labkit_train.json").read_text())
    assert info["freeze"]["vision"]["trainable"] == 0 and info["freeze"]["language"]["trainable"] > 0
    model, processor = load(final)
    assert processor.tokenizer.padding_side == "left"


def test_sft_qwen_freezes_vision_but_trains_merger(tiny_qwen, handmade_dataset, tmp_path):
    # Qwen2.5-VL: freezing only the vision tower leaves the merger (the projector) trainable,
    # and freezing the language model keeps it bit-identical.
    from labkit.sft import run_sft

    recipe = sft_recipe(tiny_qwen, handmade_dataset, tmp_path, num_train_epochs=1)
    recipe.freeze.projector = False
    recipe.freeze.language = True
    before = snapshot(tiny_qwen)
    assert before["projector"] and all(".visual.merger." in f".{n}" for n in before["projector"])
    after = snapshot(run_sft(recipe))
    assert all(torch.equal(before["vision"][n], after["vision"][n]) for n in before["vision"])
    assert all(torch.equal(before["language"][n], after["language"][n]) for n in before["language"])
    assert any(not torch.equal(before["projector"][n], after["projector"][n]) for n in before["projector"])


@pytest.mark.parametrize("rewards", [{"format": 1.0, "accuracy": 1.0}, {"format": 1.0, "dpa": 1.0}], ids=["grpo", "dpa-grpo"])
def test_grpo_logs_each_reward(tiny_internvl, handmade_dataset, tmp_path, rewards):
    # GRPO runs with each reward set; train_log.jsonl and rewards.json carry each reward's mean per
    # step, equal to the mean of that reward over the logged completions of the step.
    from labkit.grpo import run_grpo
    from labkit.rewards import REWARDS

    recipe = grpo_recipe(tiny_internvl, handmade_dataset, tmp_path, rewards)
    final = run_grpo(recipe)
    out = recipe.output_path
    rows = [r for r in read_log(out / "train_log.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # 4 prompts x G=4 / 4 completions per step
    hist = json.loads((out / "rewards.json").read_text())
    assert set(hist["rewards"]) == set(rewards) and hist["step"] == [1, 2, 3, 4]
    assert all(r.get("kl") is not None for r in rows)  # beta > 0: KL to the reference is logged
    for row in rows:
        table = pd.read_parquet(out / "completions" / f"completions_{row['step']:05d}.parquet")
        assert len(table) == 4
        for name in rewards:
            assert f"rewards/{name}/mean" in row
            assert row[f"rewards/{name}/mean"] == pytest.approx(table[name].mean())
        # The logged values are what the registry's functions give on those completions.
        completions = [c if isinstance(c, str) else [dict(m) for m in c] for c in table["completion"]]
        assert REWARDS["format"](completions) == pytest.approx(list(table["format"]))
    assert (out / "reward_curves.html").read_text().count("plotly") > 0
    assert (final / "config.json").exists()


def test_resume_continues_at_the_right_step(tiny_internvl, handmade_dataset, tmp_path):
    # A run interrupted after checkpoint-2 (of 4 steps) resumes at global step 2, ends at step 4,
    # and train_log.jsonl holds steps 1..4 once each.
    from transformers import TrainerCallback

    from labkit.sft import run_sft

    class StartStep(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_train_begin(self, args, state, control, **kw):
            self.steps.append(state.global_step)

    recipe = sft_recipe(tiny_internvl, handmade_dataset, tmp_path, num_train_epochs=2,
                        save_strategy="steps", save_steps=2)
    first = StartStep()
    run_sft(recipe, callbacks=[first])
    out = recipe.output_path
    assert last_checkpoint(out).name == "checkpoint-4"
    # Simulate an interruption right after step 2: drop the later checkpoint, the final model and
    # the log lines of steps 3-4 written before the "crash" stay (they must be dropped on resume).
    import shutil

    shutil.rmtree(out / "checkpoint-4")
    shutil.rmtree(out / "final")
    second = StartStep()
    final = run_sft(recipe, resume=True, callbacks=[second])
    assert first.steps == [0] and second.steps == [2]
    info = json.loads((final / "labkit_train.json").read_text())
    assert info["global_step"] == 4 and info["resumed_from"].endswith("checkpoint-2")
    steps = [r["step"] for r in read_log(out / "train_log.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4]


def test_custom_train_sampler_is_used(tiny_internvl, handmade_dataset, tmp_path):
    # The HCM hook: a sampler passed to run_grpo replaces TRL's RepeatSampler; the trainer calls its
    # set_epoch each epoch and trains on exactly the prompts it yields (here only sample 1, G times).
    from labkit.grpo import LabGRPOTrainer, run_grpo

    class OnlyOne(torch.utils.data.Sampler):
        def __init__(self, index, g):
            self.index, self.g, self.epochs = index, g, []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter([self.index] * (self.g * 2))  # two groups of the same prompt

        def __len__(self):
            return self.g * 2

    sampler = OnlyOne(1, 4)
    recipe = grpo_recipe(tiny_internvl, handmade_dataset, tmp_path, {"format": 1.0, "accuracy": 1.0},
                         num_train_epochs=2)

    class Sub(LabGRPOTrainer):
        used = False

        def _get_train_sampler(self, dataset=None):
            Sub.used = True
            return super()._get_train_sampler(dataset)

    run_grpo(recipe, train_sampler=sampler, trainer_cls=Sub)
    # transformers calls set_epoch twice per epoch (dataloader and sampler): it must be idempotent.
    assert Sub.used and sorted(set(sampler.epochs)) == [0, 1] and sampler.epochs == sorted(sampler.epochs)
    rows = [r for r in read_log(recipe.output_path / "train_log.jsonl") if "reward" in r]
    assert len(rows) == 4  # 2 epochs x (8 completions / 4 per step)
    prompts = set()
    for row in rows:
        table = pd.read_parquet(recipe.output_path / "completions" / f"completions_{row['step']:05d}.parquet")
        prompts |= {str(p) for p in table["prompt"]}
    assert len(prompts) == 1
    with pytest.raises(TypeError, match="subclass"):
        run_grpo(recipe, trainer_cls=object)


def test_model_parts_cover_every_parameter(tiny_internvl):
    # The three parts partition the parameters (nothing is missed or counted twice).
    from labkit.models import load

    model, _ = load(tiny_internvl)
    parts = model_parts(model)
    names = [n for part in PARTS for n in parts[part]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert all(n.startswith("model.vision_tower.") for n in parts["vision"])
    assert all(n.startswith("model.multi_modal_projector.") for n in parts["projector"])


def test_sft_rows_for_stage11_and_verdicts(tmp_path):
    # Stage 1.1 rows: a caption turn per captioned sample plus a screening turn with the weak CoT;
    # "verdicts" reasoning is one yes/no verdict per candidate from the defect tags.
    from conftest import make_sample

    from labkit.data import save_split
    from labkit.sft import build_sft_dataset, verdicts_cot

    samples = [make_sample(i, a, split="pseudo_label", caption=f"Original: box {i}.", cot=f"A looks fine {i}.")
               for i, a in enumerate(["AC", "N", "B"])]
    samples.append(make_sample(3, "D", split="pseudo_label"))  # no caption: screening row only
    save_split(samples, tmp_path / "ds", "pseudo_label")
    base = {"arm": "s", "stage": "sft", "model": "m", "data": str(tmp_path / "ds"), "split": "pseudo_label",
            "run_dir": str(tmp_path), "training": {}}
    ds, info = build_sft_dataset(recipe_from_dict({**base, "tasks": ["caption", "screen"]}))
    assert info == {"rows": 7, "samples": 4, "skipped": {"screen": 0, "caption": 1}}
    replies = [row["messages"][1]["content"][0]["text"] for row in ds]
    assert replies[0] == "Original: box 0." and replies[1] == "<think>A looks fine 0.</think><answer>AC</answer>"
    assert all(len(row["images"]) == 5 for row in ds)
    ds, _ = build_sft_dataset(recipe_from_dict({**base, "cot": "verdicts", "limit": 1}))
    assert ds[0]["messages"][1]["content"][0]["text"] == (
        "<think>A: ok. B: no, wrong shadow. C: ok. D: no, wrong shadow.</think><answer>AC</answer>")
    assert verdicts_cot({"candidate_defects": None}) is None
    direct, _ = build_sft_dataset(recipe_from_dict({**base, "conversion": {"form": "direct"}, "limit": 2}))
    assert [r["messages"][1]["content"][0]["text"] for r in direct] == ["AC", "N"]


def test_grpo_resume_continues_at_the_right_step(tiny_internvl, handmade_dataset, tmp_path):
    # GRPO resumes from checkpoint-2 of 4 at global step 2 (regenerating its buffered rollouts),
    # and rewards.json then covers steps 1..4 once each.
    import shutil

    from transformers import TrainerCallback

    from labkit.grpo import run_grpo

    starts = []

    class StartStep(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            starts.append(state.global_step)

    recipe = grpo_recipe(tiny_internvl, handmade_dataset, tmp_path, {"format": 1.0, "dpa": 1.0},
                         save_strategy="steps", save_steps=2, log_completions=False)
    run_grpo(recipe, callbacks=[StartStep()])
    out = recipe.output_path
    shutil.rmtree(out / "checkpoint-4")
    shutil.rmtree(out / "final")
    final = run_grpo(recipe, resume=True, callbacks=[StartStep()])
    assert starts == [0, 2]
    assert json.loads((final / "labkit_train.json").read_text())["global_step"] == 4
    assert json.loads((out / "rewards.json").read_text())["step"] == [1, 2, 3, 4]
