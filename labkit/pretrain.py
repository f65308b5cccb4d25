"""`labkit pretrain`: make the small screener a pretrained VLM, once, before any screening training.

    labkit pretrain --out data/models/small-pretrained [--seed 0] [--quick]

The paper's models start from InternVL3, a VLM whose vision encoder and language model were
pretrained and aligned on millions of images. Nothing like it can be downloaded here, and a
random-initialised small InternVL does not learn to see from the screening task in CPU-minutes
(docs/training.md has the measurements), so the lab makes its own pretrained small VLM with a
miniature of the standard recipe, on synthetic images the demo never trains or tests on (data
seed ``1000 + seed``). Perception is taught; the screening decision is not: no stage shows an
answer, a verdict or the word "acceptable".

1. **data**: `labkit.synth` samples (224 px, kept display-friendly; the model sees 64 px);
2. **base**: the random-initialised ``small`` InternVL (`labkit.models.build_model`);
3. **vision**: the vision tower and projector learn the synthetic defects with a throw-away head
   (`labkit.pretrain_vision`);
4. **read**: one image after its label, described in one line (LLaVA's alignment stage in
   miniature): the language model learns to read image tokens (TRL SFTTrainer, vision frozen);
5. **find**: five images after their labels, described line by line, from one sample or from
   five different ones: the language model learns to find an image by its label.

Each stage is cached in ``OUT/stages/NAME`` and skipped when done, so an interrupted run resumes.
The result in ``OUT`` is a plain transformers model folder (``AutoModelForImageTextToText``
reloads it) with ``pretrain.json``: every stage's settings, seconds and held-out measures.
``--quick`` runs the same stages on a few samples and steps (the tests use it).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit.data import load_split
from labkit.models import SIZES, build_model, load
from labkit.pretrain_vision import image_tensors, train_vision
from labkit.recipes import ConversionSpec, FreezeSpec, Recipe
from labkit.synth import make_dataset

DEFAULT_CACHE = "data/models/small-pretrained"
DATA_SEED_OFFSET = 1000  # pretraining data never shares a seed with the demo's data (seeds 0, 1, 2, ...)


@dataclass
class PretrainConfig:
    """How `labkit pretrain` builds the small pretrained screener (defaults: the lab's `small` model)."""

    arch: str = field(default="internvl", metadata={"help": "model family (internvl)"})
    size: str = field(default="small", metadata={"help": "model size from labkit.models.SIZES"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and training; data uses 1000 + seed"})
    layout: str = field(default="pairs", metadata={"help": "image layout the model will screen in (labkit.conversions.sample_images)"})
    head: str = field(default="alone", metadata={"help": "vision pretraining head (labkit.pretrain_vision.HEADS)"})
    samples: int = field(default=12000, metadata={"help": "synthetic training samples (5 images each)"})
    heldout: int = field(default=400, metadata={"help": "held-out samples for the stages' measures"})
    vision_steps: int = field(default=6000, metadata={"help": "vision pretraining steps"})
    vision_batch: int = field(default=16, metadata={"help": "samples per vision step"})
    vision_lr: float = field(default=1e-3, metadata={"help": "vision pretraining learning rate"})
    read_kind: str = field(default="defects_image", metadata={"help": "perception row kind of stage read (labkit.perception)"})
    read_rows: int = field(default=6000, metadata={"help": "single-image description rows (stage read)"})
    read_batch: int = field(default=32, metadata={"help": "rows per step in stage read"})
    read_lr: float = field(default=2e-3, metadata={"help": "learning rate of stage read"})
    find_rows: int = field(default=0, metadata={"help": "multi-image description rows (stage find), half mixed; 0 skips it"})
    find_batch: int = field(default=16, metadata={"help": "rows per step in stage find"})
    find_lr: float = field(default=1e-3, metadata={"help": "learning rate of stage find"})
    workers: int | None = field(default=None, metadata={"help": "processes for data synthesis (default: all cores)"})

    @classmethod
    def quick(cls, **kw) -> "PretrainConfig":
        """A few samples and steps: the same stages in about a minute (tests)."""
        small = dict(samples=24, heldout=8, vision_steps=6, vision_batch=4, read_rows=40, read_batch=8,
                     find_rows=16, find_batch=4, workers=1)
        small.update(kw)
        return cls(**small)


def pretrained_cache(path=None) -> Path:
    """The pretrained model's folder: ``path`` (default `DEFAULT_CACHE`); a relative path is
    taken from the repository root (beside ``labkit/``), so runs started anywhere share one cache."""
    p = Path(path or DEFAULT_CACHE)
    return p if p.is_absolute() else Path(__file__).resolve().parent.parent / p


def _sft_recipe(name: str, model: Path, data: Path, out: Path, image_size: int, perception: dict, *, seed: int,
                batch: int, lr: float, steps_hint: int, layout: str = "pairs"):
    """A stage-``sft`` recipe for perception rows only (vision tower frozen)."""

    return Recipe(
        arm=name, stage="sft", model=str(model), data=str(data), output_dir=str(out), split="train", tasks=[],
        perception=perception, seed=seed, description=f"pretraining stage {name}",
        conversion=ConversionSpec(form="cot", layout=layout, variant="train", image_size=image_size, prompt="short"),
        freeze=FreezeSpec(vision=True, projector=False, language=False),
        training=dict(use_cpu=True, bf16=False, gradient_checkpointing=False, num_train_epochs=1,
                      per_device_train_batch_size=batch, gradient_accumulation_steps=1, learning_rate=lr,
                      lr_scheduler_type="cosine", warmup_steps=min(20, max(1, steps_hint // 10)), weight_decay=0.0,
                      max_length=None, assistant_only_loss=True, logging_steps=10, save_strategy="no",
                      dataloader_num_workers=0, report_to="none"),
    )


def run_pretrain(out, config: PretrainConfig | None = None, *, progress: bool = True) -> Path:
    """Run (or resume) every stage into ``out``; return ``out`` (the pretrained model folder)."""
    import torch

    from labkit.sft import run_sft

    cfg = config or PretrainConfig()
    out = Path(out)
    stages = out / "stages"
    stages.mkdir(parents=True, exist_ok=True)
    log_path = out / "pretrain.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {"config": asdict(cfg), "stages": {}}
    if log["config"] != asdict(cfg):
        raise ValueError(f"{out} holds a pretraining run with other settings; use another --out or delete it")
    image_size = SIZES[cfg.size].image_size

    def done(name: str, info: dict) -> None:
        log["stages"][name] = info
        log_path.write_text(json.dumps(log, indent=2) + "\n")

    data = stages / "data"
    if "data" not in log["stages"]:
        t = time.time()
        make_dataset(data, train=cfg.samples, test=cfg.heldout, seed=DATA_SEED_OFFSET + cfg.seed, size=224,
                     workers=cfg.workers, progress=progress)
        done("data", {"seconds": time.time() - t, "seed": DATA_SEED_OFFSET + cfg.seed})
    base = stages / "base"
    if "base" not in log["stages"]:
        t = time.time()
        build_model(cfg.arch, cfg.size, base, seed=cfg.seed)
        done("base", {"seconds": time.time() - t})
    vision = stages / "vision"
    if "vision" not in log["stages"]:
        t = time.time()
        torch.manual_seed(cfg.seed)
        model, processor = load(base, dtype="float32")
        train_x = image_tensors(load_split(data, "train", validate=False), image_size, progress, cfg.layout)
        held = image_tensors(load_split(data, "test", validate=False), image_size, progress, cfg.layout)
        info = train_vision(model, processor, *train_x, steps=cfg.vision_steps, batch_size=cfg.vision_batch,
                            lr=cfg.vision_lr, seed=cfg.seed, head=cfg.head, eval_data=held, progress=progress)
        model.save_pretrained(vision, safe_serialization=True)
        processor.save_pretrained(vision)
        shutil.copy(base / "labkit_model.json", vision / "labkit_model.json")
        info["seconds"] = time.time() - t
        done("vision", info)
    previous = vision
    for name, kinds, rows, batch, lr in (
        ("read", {cfg.read_kind: cfg.read_rows}, cfg.read_rows, cfg.read_batch, cfg.read_lr),
        ("find", {"describe": cfg.find_rows // 2, "describe_mixed": cfg.find_rows - cfg.find_rows // 2},
         cfg.find_rows, cfg.find_batch, cfg.find_lr),
    ):
        if rows == 0:
            continue
        if name not in log["stages"]:
            t = time.time()
            recipe = _sft_recipe(name, previous, data, stages / name, image_size, kinds, seed=cfg.seed, batch=batch,
                                 lr=lr, steps_hint=rows // batch, layout=cfg.layout)
            run_sft(recipe)
            done(name, {"seconds": time.time() - t, "rows": kinds, "batch": batch, "lr": lr})
        previous = stages / name / "final"
    # The result: the last stage's model and processor at the top of OUT.
    for item in previous.iterdir():
        if item.is_file() and item.name not in ("labkit_train.json", "README.md"):
            shutil.copy(item, out / item.name)
    info = json.loads((previous / "labkit_model.json").read_text())
    info["pretrained"] = {"command": f"labkit pretrain --out {out} --seed {cfg.seed}", "stages": list(log["stages"]),
                          "minutes": sum(s.get("seconds", 0) for s in log["stages"].values()) / 60}
    (out / "labkit_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return out
