"""GPU smoke run of the paper recipes: the full-size InternVL3-1B architecture, a few SFT and GRPO steps.

    python benchmarks/gpu_smoke.py --tiny                   # CPU, the lab's tiny model, under a minute (CI)
    python benchmarks/gpu_smoke.py --out runs/gpu-smoke     # GPU: InternVL3-1B-hf architecture, bf16

Both forms run the same code:

1. Model. On a GPU: a random-initialised `InternVLForConditionalGeneration` of the published
   InternVL3-1B-hf architecture (``benchmarks/internvl3_1b_hf.py`` and ``.json``: 938M parameters,
   vocabulary 151,674), the lab's local BPE tokenizer and a 448 px processor with one tile per image (256
   image tokens). With ``--tiny``: ``labkit.models.build_model(arch="internvl", size="tiny")``.
   Nothing is downloaded; loading hub checkpoints (``labkit.models.load``) is untouched.
2. Data: a few synthetic samples (``labkit.synth.make_dataset``), five images each.
3. The paper's SFT recipe (``recipes/paper/1b/sft.yaml``: ViT and projector frozen, bf16, gradient
   checkpointing) through ``labkit.sft.run_sft``, then the DPA-GRPO recipe
   (``recipes/paper/1b/dpa-grpo.yaml``: G=4, beta 0.04 with a reference model, 5 images per
   prompt, top-k 3, top-p 0.8, 1024-token completions) through ``labkit.grpo.run_grpo`` from the
   SFT's ``final/``, as the paper chains them. Overridden: model path, data, run folder,
   ``max_steps``, ``logging_steps=1``; on CPU also ``bf16=false``, ``use_cpu=true``, no loader
   processes, images at the tiny model's 56 px and 64-token GRPO completions.
4. Per stage it prints and writes (``OUT/gpu_smoke.json``, ``OUT/gpu_smoke.md``): step time
   (mean after a warm-up step), peak memory (``torch.cuda.max_memory_allocated`` on a GPU; on CPU
   the process's peak RSS, labelled so), tokens per step and per second (TRL's ``num_tokens``),
   image tokens per sample and per image, GRPO generation time per step, and what changed in
   each part of the model. The run fails (exit 1) when an image does not get
   ``image_seq_length`` tokens, a frozen part moved, the language model did not, gradient
   checkpointing was off, a stage ran short, or a number is not finite.

GPU run from a session with a device. The device tool copies the working tree; the machine has
Python 3.12 with torch, accelerate, peft, pyarrow, pandas, pillow, tokenizers and huggingface_hub
but not trl or datasets, and nothing can be installed there from a registry, so carry those as
wheels (about 15 MB; the machine's own torch and huggingface_hub are used). Here, in the repo
root, once::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl transformers==5.23.0 trl==1.16.0 datasets==5.2.0 dill==0.4.0 multiprocess==0.70.18

then ``run`` with ``carry: [".whl"]``, ``timeout_s: 600`` and the command::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 \
      && python3 -c "import torch, pyarrow, fsspec, huggingface_hub as h; print(torch.__version__, pyarrow.__version__, fsspec.__version__, h.__version__)" \
      && { python3 benchmarks/gpu_smoke.py --out /tmp/gpu-smoke --sft-steps 4 --grpo-steps 3 > $OUT/gpu_smoke.log 2>&1;
           rc=$?; cp /tmp/gpu-smoke/gpu_smoke.* $OUT/; tail -40 $OUT/gpu_smoke.log; exit $rc; }

(datasets 5.2 wants pyarrow >= 24 and fsspec <= 2026.9; the version line shows what the machine
has. The pinned pyarrow wheel is 55 MB, too big to carry with the rest.) The run folder holds the
model and checkpoints (gigabytes), so it stays in /tmp there; only the report and log come back.

Not yet run on a GPU. Estimated, not measured: a few minutes on an H200 (GRPO's 1024-token
rollouts of a random model dominate) and some tens of GiB (the 151,674-wide logits of 8 x ~1,800
tokens dominate SFT's memory). The table of ``gpu_smoke.md`` goes into docs/training.md with the
GPU name and date.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run from a checkout: this checkout's labkit, and the architecture module beside this file.
sys.path[:0] = [str(ROOT), str(HERE)]

from internvl3_1b_hf import build_full_model, published_config  # noqa: E402  (path set above)

SFT_RECIPE = ROOT / "recipes" / "paper" / "1b" / "sft.yaml"
GRPO_RECIPE = ROOT / "recipes" / "paper" / "1b" / "dpa-grpo.yaml"
FULL_IMAGE_SIZE = 448


# ----------------------------------------------------------------------------- measuring

def peak_memory() -> tuple[float, str]:
    """(GiB, what it is): CUDA's peak allocated since the last reset, else this process's peak RSS."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30, "cuda max_memory_allocated"
    # ru_maxrss is in KiB on Linux; it is the process's peak since it started, not per stage.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "CPU run: process peak RSS (not GPU memory)"


def _sync():
    """Wait for queued GPU work, so that wall-clock times cover it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def snapshot_parts(model, per_part: int = 6) -> dict:
    """Copies (on CPU) of a few parameters of each part (vision, projector, language), evenly spread.

    The input embedding table is left out: only the rows of tokens in the batch get a gradient (a
    few thousand of the full model's 151,674), so its other rows never move in any precision.
    """
    from labkit.training import model_parts

    snap = {}
    for part, params in model_parts(model).items():
        names = [n for n in params if "embed_tokens" not in n]
        picks = sorted({names[round(i * (len(names) - 1) / max(per_part - 1, 1))] for i in range(per_part)}) if names else []
        snap[part] = {n: params[n].detach().to("cpu", copy=True) for n in picks}
    return snap


def changed_fraction(before: dict, model) -> dict:
    """Per part: the fraction of the sampled parameter elements that differ from the snapshot."""
    from labkit.training import model_parts

    parts = model_parts(model)
    out = {}
    for part, tensors in before.items():
        total = changed = 0
        for name, old in tensors.items():
            new = parts[part][name].detach().to("cpu")
            changed += int((new != old).sum())
            total += old.numel()
        out[part] = changed / total if total else None
    return out


def make_meter():
    """A `TrainerCallback` that times steps and reads memory, tokens, checkpointing and parameter changes."""
    from transformers import TrainerCallback

    class StageMeter(TrainerCallback):
        def __init__(self):
            self.step_times, self.logs, self.generation = [], [], []
            self.before = None
            self.info = {}

        def on_train_begin(self, args, state, control, model=None, **kw):
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            self.before = snapshot_parts(model)
            self.info["dtype"] = str(next(model.parameters()).dtype)

        def on_step_begin(self, args, state, control, **kw):
            _sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kw):
            _sync()
            self.step_times.append(time.perf_counter() - self.t0)
            if len(self.step_times) == 1:
                # Read after a step: the trainer switches checkpointing on inside train(), and with it the
                # hooks that make the input embeddings require grad (vision tower frozen).
                flag = getattr(model, "is_activation_checkpointing", None)
                flag = getattr(model, "is_gradient_checkpointing", False) if flag is None else flag
                self.info["gradient_checkpointing"] = bool(flag)
                self.info["input_require_grads_hooks"] = len(getattr(model, "_require_grads_hooks", []) or [])

        def on_log(self, args, state, control, logs=None, **kw):
            if logs:
                self.logs.append({"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})

        def on_train_end(self, args, state, control, model=None, **kw):
            _sync()
            self.info["peak_memory_gib"], self.info["memory_kind"] = peak_memory()
            self.info["changed"] = changed_fraction(self.before, model)
            self.info["global_step"] = state.global_step

    return StageMeter()


def timed_grpo_trainer(meter):
    """`LabGRPOTrainer` that adds each step's generation time to ``meter.generation`` and notes the reference model."""
    from labkit.grpo import lab_trainer_class

    base = lab_trainer_class()

    class TimedGRPOTrainer(base):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            meter.info["reference_model"] = getattr(self, "ref_model", None) is not None

        def _generate(self, *a, **kw):
            _sync()
            t0 = time.perf_counter()
            try:
                return super()._generate(*a, **kw)
            finally:
                _sync()
                meter.generation.append(time.perf_counter() - t0)

    return TimedGRPOTrainer


def image_tokens(recipe, stage: str) -> dict:
    """Tokens of the first training sample as the processor builds them: image tokens, images, sequence."""
    from labkit.grpo import build_grpo_dataset
    from labkit.models import INTERNVL_TOKENS
    from labkit.sft import build_sft_dataset
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(recipe.model)
    recipe = dataclasses.replace(recipe, limit=1)  # one sample is enough to count tokens
    if stage == "sft":
        row = build_sft_dataset(recipe)[0][0]
        messages, images = row["messages"], row["images"]
        text = processor.apply_chat_template(messages, tokenize=False)
    else:
        row = build_grpo_dataset(recipe)[0]
        messages, images = row["prompt"], row["images"]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = processor(text=[text], images=[images], return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids(INTERNVL_TOKENS["context_image_token"])
    n_image = int((batch["input_ids"] == image_id).sum())
    return {"images_per_sample": len(images), "image_tokens_per_sample": n_image,
            "image_tokens_per_image": n_image / max(len(images), 1), "sequence_tokens": int(batch["input_ids"].shape[1]),
            "pixel_values": list(batch["pixel_values"].shape)}


# ----------------------------------------------------------------------------- one stage

def summarise(stage: str, recipe, meter, tokens: dict, wall: float) -> dict:
    """One table row from a stage's meter: times after the warm-up step, tokens/s from TRL's num_tokens."""
    times = meter.step_times
    timed = times[1:] if len(times) > 1 else times
    per_step_tokens, last = {}, 0.0
    for row in meter.logs:
        if "num_tokens" in row:
            per_step_tokens[row["step"]] = row["num_tokens"] - last
            last = row["num_tokens"]
    steps_tokens = [per_step_tokens.get(i + 1) for i in range(len(times))]
    timed_tokens = steps_tokens[1:] if len(times) > 1 else steps_tokens
    known = [(t, n) for t, n in zip(timed, timed_tokens) if n is not None]
    t = recipe.training
    row = {
        "stage": stage, "recipe": str(Path(recipe.source).relative_to(ROOT)) if recipe.source else recipe.arm,
        "steps": len(times), "first_step_s": times[0] if times else None,
        "step_s": sum(timed) / len(timed) if timed else None,
        "tokens_per_step": (sum(n for _, n in known) / len(known)) if known else None,
        "tokens_per_s": (sum(n for _, n in known) / sum(t_ for t_, _ in known)) if known else None,
        "batch": t.get("per_device_train_batch_size"), "bf16": t.get("bf16"),
        "gradient_checkpointing_setting": t.get("gradient_checkpointing"),
        "wall_s": wall, **tokens, **meter.info,
        "last_log": meter.logs[-1] if meter.logs else {},
    }
    if stage == "grpo":
        gen = meter.generation[1:] if len(meter.generation) > 1 else meter.generation
        row.update(num_generations=t.get("num_generations"), beta=t.get("beta"),
                   max_completion_length=t.get("max_completion_length"),
                   generation_s_per_step=(sum(gen) / len(gen)) if gen else None)
    return row


def check(row: dict, expect_tokens_per_image: int, steps: int) -> list[str]:
    """What is wrong with one stage's row (empty when it passed)."""
    bad = []
    s = row["stage"]
    if "error" in row:
        return [f"{s}: failed: {row['error']}"]
    if row["images_per_sample"] != 5:
        bad.append(f"{s}: {row['images_per_sample']} images per sample, the recipe's layout gives 5")
    if row["image_tokens_per_image"] != expect_tokens_per_image:
        bad.append(f"{s}: {row['image_tokens_per_image']} image tokens per image, the config says {expect_tokens_per_image}")
    if row.get("global_step") != steps:
        bad.append(f"{s}: ran {row.get('global_step')} steps, asked for {steps}")
    for key in ("step_s", "first_step_s", "tokens_per_s", "peak_memory_gib"):
        v = row.get(key)
        if v is None or not math.isfinite(v) or v <= 0:
            bad.append(f"{s}: {key} is {v!r}, expected a positive number")
    loss = row["last_log"].get("loss")
    if loss is not None and not math.isfinite(loss):
        bad.append(f"{s}: loss is {loss}")
    if row["gradient_checkpointing_setting"] and not row.get("gradient_checkpointing"):
        bad.append(f"{s}: the recipe asks for gradient checkpointing but the model did not have it on")
    changed = row.get("changed", {})
    if s == "sft":
        for part in ("vision", "projector"):
            if changed.get(part):
                bad.append(f"{s}: the frozen {part} part changed ({changed[part]:.3g} of sampled weights)")
        if not changed.get("language"):
            bad.append(f"{s}: the language model did not change: no gradient reached it")
    if s == "grpo" and row.get("beta") and not row.get("reference_model"):
        bad.append(f"{s}: beta {row.get('beta')} but the trainer has no reference model")
    return bad


def precision_warnings(rows: list[dict]) -> list[str]:
    """Notes that do not fail the run: updates lost to bfloat16 weights (the fix is in how models load)."""
    notes = []
    for r in rows:
        lang = (r.get("changed") or {}).get("language")
        if r.get("dtype") == "torch.bfloat16" and r["stage"] == "sft" and lang is not None and lang < 0.5:
            notes.append(
                f"{r['stage']}: only {lang:.0%} of the sampled language-model weights changed: the weights are bfloat16 "
                f"(labkit.models.load on CUDA) and AdamW steps of lr {r['last_log'].get('learning_rate', '?')} are below "
                "bfloat16's resolution, so most updates round away. Train with float32 weights under bf16 autocast, or "
                "through DeepSpeed (fp32 master weights)."
            )
    return notes


def run_stages(args, model_dir: Path, data_dir: Path, run_dir: Path, device: str, image_size: int) -> list[dict]:
    """SFT then DPA-GRPO from the SFT model, each measured; returns the two table rows."""
    from labkit.grpo import run_grpo
    from labkit.recipes import load_recipe
    from labkit.sft import run_sft

    common = {"data": str(data_dir), "run_dir": str(run_dir), "training.logging_steps": 1}
    if device == "cpu":
        # CPU form: no bf16; images at the tiny model's size and no loader processes, so CI stays fast.
        common.update({"training.bf16": False, "training.use_cpu": True, "training.dataloader_num_workers": 0,
                       "conversion.image_size": image_size})
    grpo_over = {**common, "training.max_steps": args.grpo_steps}
    if args.max_completion_length:
        grpo_over["training.max_completion_length"] = args.max_completion_length
    recipes = {
        "sft": load_recipe(args.sft_recipe, {**common, "model": str(model_dir), "training.max_steps": args.sft_steps}),
        # The GRPO recipe's own model, {run_dir}/sft/final, is the SFT stage's output, as in the paper.
        "grpo": load_recipe(args.grpo_recipe, grpo_over),
    }
    rows = []
    for stage, recipe in recipes.items():
        print(f"\n== {stage}: {recipe.source} ({recipe.training.get('max_steps')} steps) from {recipe.model}", flush=True)
        try:
            tokens, meter, t0 = image_tokens(recipe, stage), make_meter(), time.perf_counter()
            if stage == "sft":
                run_sft(recipe, callbacks=[meter])
            else:
                run_grpo(recipe, trainer_cls=timed_grpo_trainer(meter), callbacks=[meter])
        except Exception as exc:  # noqa: BLE001  (report what broke, e.g. out of memory, and keep the rows so far)
            traceback.print_exc()
            rows.append({"stage": stage, "recipe": recipe.arm, "error": f"{type(exc).__name__}: {exc}"[:500]})
            break  # GRPO starts from the SFT stage's model
        rows.append(summarise(stage, recipe, meter, tokens, time.perf_counter() - t0))
    return rows


# ----------------------------------------------------------------------------- report

def markdown(meta: dict, rows: list[dict]) -> str:
    """The measured table as markdown (what goes into docs/training.md)."""
    def f(v, spec=".3g"):
        return "-" if v is None else format(v, spec)

    lines = [
        f"GPU smoke run: {meta['model']} ({meta['parameters']:,} parameters, {meta['dtype']}) on {meta['device_name']}, "
        f"{meta['date']}; torch {meta['torch']}, transformers {meta['transformers']}, trl {meta['trl']}; seed {meta['seed']}.",
        f"Command: `{meta['command']}`",
        "",
        "| stage | steps | s/step (after warm-up) | first step s | peak memory GiB | tokens/step | tokens/s "
        "| images x image tokens / sample | sequence tokens | GRPO generation s/step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['stage']} ({r['recipe']}) | failed: {r['error'][:200]} |" + " |" * 8)
            continue
        lines.append(
            f"| {r['stage']} ({r['recipe']}) | {r['steps']} | {f(r['step_s'])} | {f(r['first_step_s'])} "
            f"| {f(r['peak_memory_gib'])} | {f(r['tokens_per_step'], '.0f')} | {f(r['tokens_per_s'], '.0f')} "
            f"| {r['images_per_sample']} x {f(r['image_tokens_per_image'], '.0f')} = {r['image_tokens_per_sample']} "
            f"| {r['sequence_tokens']} | {f(r.get('generation_s_per_step'))} |"
        )
    ran = [r for r in rows if "error" not in r]
    if ran:
        lines += ["", f"Peak memory: {ran[0]['memory_kind']}. Changed weights (sampled): "
                  + "; ".join(f"{r['stage']} " + ", ".join(f"{k} {f(v)}" for k, v in r["changed"].items()) for r in ran)
                  + f". Gradient checkpointing on: {', '.join(str(r.get('gradient_checkpointing')) for r in ran)}; "
                  f"GRPO reference model: {ran[-1].get('reference_model')}."]
    lines += [f"\nWarning: {note}" for note in meta.get("warnings", [])]
    return "\n".join(lines) + "\n"


def environment(args, argv: list[str], model_dir: Path, device: str) -> dict:
    """What ran where: model, device, date, library versions, seed and the command line."""
    import torch
    import transformers
    import trl

    info = json.loads((model_dir / "labkit_model.json").read_text())
    return {
        "model": "InternVL3-1B-hf architecture, random init" if device == "cuda" else "lab tiny InternVL",
        "parameters": info["parameters"], "dtype": "bfloat16" if device == "cuda" else "float32",
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads)",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "torch": torch.__version__,
        "transformers": transformers.__version__, "trl": trl.__version__, "python": platform.python_version(),
        "seed": args.seed, "command": " ".join(["python benchmarks/gpu_smoke.py", *argv]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="CPU form: the lab's tiny InternVL (the CI test runs this)")
    p.add_argument("--out", help="folder for the model, data, runs and gpu_smoke.{json,md} (default: a temporary folder)")
    p.add_argument("--samples", type=int, default=None,
                   help="synthetic training samples (default 8 with --tiny, 32 on a GPU: one SFT epoch, one checkpoint)")
    p.add_argument("--sft-steps", type=int, default=3, help="SFT optimizer steps (the first is a warm-up)")
    p.add_argument("--grpo-steps", type=int, default=2, help="GRPO optimizer steps (the first is a warm-up)")
    p.add_argument("--max-completion-length", type=int, default=None,
                   help="override the GRPO recipe's max_completion_length (default: the recipe's; --tiny: 64)")
    p.add_argument("--sft-recipe", default=str(SFT_RECIPE))
    p.add_argument("--grpo-recipe", default=str(GRPO_RECIPE))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if min(args.sft_steps, args.grpo_steps) < 2:
        p.error("--sft-steps and --grpo-steps must be >= 2 (the first step is a warm-up)")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpu_smoke_"))
    if out.exists() and any(out.iterdir()) and not (out / "gpu_smoke.json").exists():
        p.error(f"--out {out} is a non-empty folder that is not an earlier smoke run; give a new or empty folder")

    if args.tiny:
        # The CPU form stays on the CPU even where a GPU is visible (set before torch initialises CUDA).
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here, so running the CPU form (--tiny) instead of the 1B model.")
        args.tiny = True
    device = "cpu" if args.tiny else "cuda"
    if args.tiny:
        # A random tiny model never stops early; 64 tokens keep the CPU run under a minute.
        args.max_completion_length = args.max_completion_length or 64
    # The recipes save a checkpoint per epoch; on a GPU 32 samples (4 SFT steps of 8) make one.
    args.samples = args.samples or (8 if args.tiny else 32)
    out.mkdir(parents=True, exist_ok=True)

    from labkit.synth import make_dataset

    t0 = time.perf_counter()
    if args.tiny:
        from labkit.models import SIZES, build_model

        model_dir = build_model("internvl", "tiny", out / "model", seed=args.seed)
        expect, image_size = SIZES["tiny"].image_tokens, SIZES["tiny"].image_size
    else:
        model_dir = build_full_model(out / "model", seed=args.seed)
        expect, image_size = published_config()["image_seq_length"], FULL_IMAGE_SIZE
    print(f"model: {model_dir} ({time.perf_counter() - t0:.1f} s)", flush=True)
    # Synthetic images at the model's input size (64 px for tiny: the generator's smallest tested size).
    data_dir = make_dataset(out / "data", train=args.samples, size=max(image_size, 64), seed=args.seed, workers=1,
                            progress=False)
    meta = environment(args, sys.argv[1:] if argv is None else list(argv), model_dir, device)
    rows = run_stages(args, model_dir, data_dir, out / "run", device, image_size)
    problems = [b for r in rows for b in check(r, expect, args.sft_steps if r["stage"] == "sft" else args.grpo_steps)]
    meta["problems"] = problems
    meta["warnings"] = precision_warnings(rows)
    (out / "gpu_smoke.json").write_text(json.dumps({"meta": meta, "stages": rows}, indent=2, default=str) + "\n")
    table = markdown(meta, rows)
    (out / "gpu_smoke.md").write_text(table)
    print("\n" + table)
    for note in meta["warnings"]:
        print("WARNING: " + note)
    print(f"written: {out / 'gpu_smoke.json'}, {out / 'gpu_smoke.md'}")
    if problems:
        print("SMOKE CHECKS FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("smoke checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
