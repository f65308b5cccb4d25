"""The paper's generation pipeline: segment, lay out, compose side by side, inpaint 4 candidates.

Steps (../shared/paper.md, Generation pipeline):

1. segment the product from its photo (`labkit.segment`);
2. (steps 2-4: `labkit.compose`) draw a layout with the seed (``top_bottom``: product in the lower band; ``left_right``:
   product in the left or right band) and scale the product into that region of a white
   canvas: the *placeholder*;
3. draw a reference background from a gallery (a folder of images; by default the
   synthetic scene generator's `labkit.synth.background_gallery`);
4. *initial image* = reference (left half) | placeholder (right half); *mask* = black left
   half, white right half except the product (black): only the scene around the product
   is redrawn;
5. inpaint with FLUX.1 Fill conditioned on FLUX.1 Redux embeddings of the reference
   (`labkit.flux`), one seed per candidate; the right half of the result is the candidate.

The output folder is a dataset folder: ``exploration.parquet`` (unlabelled samples,
``source="generated"``) written with `labkit.data.save_split`, plus ``work/<id>/`` with the
intermediate PNGs (reference, placeholder, mask, initial, candidates) and ``done/<id>.json``,
one record per finished original, so an interrupted run resumes where it stopped.

    labkit build-diffusion --out data/models/tiny-flux
    labkit generate --originals photos/ --out data/generated --recipe recipes/generate/small.yaml
    accelerate launch -m labkit generate ... --recipe recipes/generate/paper.yaml   # several GPUs
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from labkit.compose import LAYOUTS, GenerationError, draw_layout, make_initial, make_placeholder, square_reference
from labkit.data import save_split
from labkit.diffusion_models import build_tiny_flux
from labkit.metrics import LETTERS
from labkit.segment import SEGMENTERS, SegmentationError, get_segmenter, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


# ----------------------------------------------------------------------------- config

@dataclass
class GenerateConfig:
    """A generation recipe (``recipes/generate/*.yaml``). Unknown keys are errors."""

    fill_model: str = field(default="black-forest-labs/FLUX.1-Fill-dev", metadata={"help": "FluxFillPipeline hub id or folder"})
    redux_model: str = field(default="black-forest-labs/FLUX.1-Redux-dev", metadata={"help": "FluxPriorReduxPipeline hub id or folder"})
    build_tiny_if_missing: bool = field(default=False, metadata={"help": "build tiny random models at fill_model/redux_model's parent if absent (small mode)"})
    size: int = field(default=512, metadata={"help": "side of each half in px; the initial image is size x 2*size; multiple of 16"})
    steps: int = field(default=50, metadata={"help": "Fill denoising steps"})
    guidance: float = field(default=30.0, metadata={"help": "Fill guidance scale (FLUX.1 Fill's usual value: 30)"})
    candidates: int = field(default=4, metadata={"help": "candidates per original (the schema needs 4)"})
    seed: int = field(default=0, metadata={"help": "base seed; per-original seeds derive from it and the original's id"})
    layouts: list[str] = field(default_factory=lambda: list(LAYOUTS), metadata={"help": "layouts drawn from: top_bottom, left_right"})
    product_scale: float = field(default=0.85, metadata={"help": "share of its region the product fills (longest fitting side)"})
    segmenter: str = field(default="threshold", metadata={"help": "threshold (plain backgrounds) or birefnet"})
    segmenter_options: dict = field(default_factory=dict, metadata={"help": "per segmenter, its kwargs: {threshold: {threshold: 30}, birefnet: {model: ...}}"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow BiRefNet's repository code (opt-in)"})
    gallery_size: int = field(default=24, metadata={"help": "backgrounds in the default synthetic gallery (paper: 20+)"})
    prompt: str = field(default="", metadata={"help": "text prompt for Redux (used only when its pipeline has text encoders)"})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 (GPU) or float16"})
    device: str | None = field(default=None, metadata={"help": "cuda, cpu, ...; null: the accelerate process's device"})
    cpu_offload: str = field(default="none", metadata={"help": "none, model (enable_model_cpu_offload) or sequential"})

    def validate(self) -> "GenerateConfig":
        if self.size <= 0 or self.size % 16:
            raise GenerationError(f"size must be a positive multiple of 16 (FLUX packs 8x latents in 2x2), got {self.size}")
        if self.candidates != 4:
            raise GenerationError(f"candidates must be 4 (the schema's A-D), got {self.candidates}")
        if self.steps < 1:
            raise GenerationError(f"steps must be >= 1, got {self.steps}")
        bad = [l for l in self.layouts if l not in LAYOUTS]
        if not self.layouts or bad:
            raise GenerationError(f"layouts must be a non-empty subset of {', '.join(LAYOUTS)}; got {self.layouts}")

        if self.segmenter not in SEGMENTERS:
            raise GenerationError(f"unknown segmenter {self.segmenter!r}; expected one of {', '.join(SEGMENTERS)}")
        bad = [k for k, v in self.segmenter_options.items() if k not in SEGMENTERS or not isinstance(v, dict)]
        if bad:
            raise GenerationError(
                f"segmenter_options must map segmenter names ({', '.join(SEGMENTERS)}) to their options; bad entries: {', '.join(map(str, bad))}"
            )
        if not 0.05 <= self.product_scale <= 1.0:
            raise GenerationError(f"product_scale must be in [0.05, 1], got {self.product_scale}")
        return self

    def fingerprint(self) -> str:
        """A hash of the settings that change the outputs (a resumed run must match it)."""
        keys = ("fill_model", "redux_model", "size", "steps", "guidance", "seed", "layouts", "product_scale",
                "segmenter", "segmenter_options", "prompt", "dtype")
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_generate_recipe(path: str | os.PathLike, overrides: dict | None = None) -> GenerateConfig:
    """Read a generation recipe YAML into a validated `GenerateConfig`."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"recipe {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise GenerationError(f"recipe {str(path)!r}: expected a mapping of settings")
    data.update(overrides or {})
    names = {f.name for f in dataclasses.fields(GenerateConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GenerationError(f"recipe {str(path)!r}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return GenerateConfig(**data).validate()


# ----------------------------------------------------------------------------- inputs

def list_images(folder: str | os.PathLike, what: str) -> list[Path]:
    """Image files in a folder (recursively, sorted); a clear error if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {str(folder)!r} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GenerationError(f"{what} folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def sample_ids(files: list[Path], root: Path) -> list[str]:
    """Stable, unique, file-system-safe sample ids from the originals' relative paths."""
    ids, seen = [], set()
    for f in files:
        base = "gen-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(f.relative_to(root).with_suffix("")))
        sid, k = base, 2
        while sid in seen:
            sid, k = f"{base}-{k}", k + 1
        seen.add(sid)
        ids.append(sid)
    return ids


def default_gallery(out: Path, n: int, size: int, seed: int) -> Path:
    """Write the synthetic scene generator's gallery (`labkit.synth.background_gallery`) as PNGs."""
    folder = out / "backgrounds"
    if folder.is_dir() and any(folder.glob("*.png")):
        return folder
    try:
        from labkit.synth import background_gallery
    except ImportError as exc:
        raise GenerationError(f"no --backgrounds folder given and the default gallery is unavailable ({exc}); pass --backgrounds DIR") from exc
    folder.mkdir(parents=True, exist_ok=True)
    images = background_gallery(n, size, seed)
    for i, img in enumerate(images):
        (img if isinstance(img, Image.Image) else Image.open(img)).convert("RGB").save(folder / f"bg-{i:03d}.png")
    return folder


def original_seed(base_seed: int, sample_id: str) -> int:
    """Per-original seed: depends only on the base seed and the id (not on order or sharding)."""
    return zlib.crc32(f"{base_seed}/{sample_id}".encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------- one original

def prepare_original(
    image: Any, sample_id: str, gallery: list[Path], cfg: GenerateConfig, segmenter=None
) -> dict:
    """Segment, draw layout/background/seeds and compose; no model needed.

    Returns a dict with the images (``original``, ``reference``, ``placeholder``, ``initial``,
    ``mask``), the ``segmentation``, the ``layout`` and the ``seeds``.
    """
    segmenter = segmenter or get_segmenter(cfg.segmenter, **_segmenter_kwargs(cfg))
    seg = segmenter.segment(image)
    seed = original_seed(cfg.seed, sample_id)
    rng = random.Random(seed)
    layout = draw_layout(rng, cfg.size, cfg.layouts)
    bg_index = rng.randrange(len(gallery))
    cand_seeds = [rng.randrange(2**31) for _ in range(cfg.candidates)]
    reference = square_reference(load_image(gallery[bg_index], "background"), cfg.size)
    placeholder, product_mask, layout = make_placeholder(seg, layout, cfg.size, cfg.product_scale)
    initial, mask = make_initial(reference, placeholder, product_mask)
    return {
        "original": seg.image, "segmentation": seg, "reference": reference, "placeholder": placeholder,
        "initial": initial, "mask": mask, "layout": layout, "background": gallery[bg_index],
        "seeds": {"original": seed, "candidates": cand_seeds},
    }


def _segmenter_kwargs(cfg: GenerateConfig) -> dict:
    kw = dict(cfg.segmenter_options.get(cfg.segmenter, {}))
    if cfg.segmenter == "birefnet":
        kw.setdefault("trust_remote_code", cfg.trust_remote_code)
    return kw


def generate_candidates(inpainter, prepared: dict, cfg: GenerateConfig) -> list[Image.Image]:
    """Inpaint once per candidate seed; each candidate is the right half of the result."""
    embeds = inpainter.reference_embeddings(prepared["reference"])
    size = cfg.size
    out = []
    for s in prepared["seeds"]["candidates"]:
        full = inpainter.inpaint(prepared["initial"], prepared["mask"], embeds, seed=s, steps=cfg.steps, guidance=cfg.guidance)
        out.append(full.crop((size, 0, 2 * size, size)))
    return out


# ----------------------------------------------------------------------------- the run

def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (tmp + replace): a record exists only once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _ensure_models(cfg: GenerateConfig) -> None:
    """Small mode: build the tiny random models where the recipe expects them."""
    if not cfg.build_tiny_if_missing:
        return
    fill, redux = Path(cfg.fill_model), Path(cfg.redux_model)
    if (fill / "model_index.json").exists() and (redux / "model_index.json").exists():
        return
    if fill.parent != redux.parent or fill.name != "fill" or redux.name != "redux":
        raise GenerationError("build_tiny_if_missing needs fill_model = DIR/fill and redux_model = DIR/redux")

    print(f"building tiny random FLUX Fill + Redux in {fill.parent} (small mode)")
    build_tiny_flux(fill.parent)


def _sample_from_record(out: Path, rec: dict) -> dict:
    files = rec["files"]
    meta = {k: rec[k] for k in ("layout", "seeds", "background", "bbox", "segmenter", "source_path", "recipe", "fingerprint")}
    meta["paths"] = files
    return {
        "id": rec["id"],
        "original": str(out / files["original"]),
        "candidates": [str(out / p) for p in files["candidates"]],
        "answer": None, "dimension": None, "candidate_defects": None, "caption": "", "cot": "",
        "split": "exploration", "source": "generated", "meta": meta,
    }


def run_generation(
    originals: str | os.PathLike,
    out: str | os.PathLike,
    cfg: GenerateConfig,
    backgrounds: str | os.PathLike | None = None,
    limit: int | None = None,
    strict: bool = False,
    inpainter=None,
) -> dict:
    """Generate 4 candidates per original and write the ``exploration`` split into ``out``.

    Originals already recorded in ``out/done`` (or ``out/skipped``) are not redone. Images
    the segmenter cannot handle are skipped with their reason in ``out/skipped/<id>.json``
    (``strict=True``: raise instead). Under ``accelerate launch`` the pending originals are
    split between processes; the main process writes the split at the end.
    Returns a summary dict (counts, paths).
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    import torch

    cfg.validate()
    # cpu=True lets accelerate shard over CPU processes too (torchrun/accelerate launch --cpu, gloo).
    state = PartialState(cpu=cfg.device == "cpu" or not torch.cuda.is_available())
    out = Path(out)
    root = Path(originals)
    files = list_images(root, "originals")
    pairs = list(zip(sample_ids(files, root), files))[: limit if limit else None]
    fingerprint = cfg.fingerprint()
    run_file = out / "generation.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous.get("fingerprint") != fingerprint:
            raise GenerationError(
                f"{str(out)!r} holds a generation run with different settings (fingerprint {previous.get('fingerprint')} "
                f"vs {fingerprint}); use another --out to keep both"
            )
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(run_file, {"fingerprint": fingerprint, "config": dataclasses.asdict(cfg)})
        if inpainter is None:
            _ensure_models(cfg)
        if not backgrounds:
            default_gallery(out, cfg.gallery_size, cfg.size, cfg.seed)
    state.wait_for_everyone()
    gallery_dir = Path(backgrounds) if backgrounds else out / "backgrounds"
    gallery = list_images(gallery_dir, "backgrounds")

    def finished(sid: str) -> bool:
        return (out / "done" / f"{sid}.json").exists() or (out / "skipped" / f"{sid}.json").exists()

    pending = [(sid, f) for sid, f in pairs if not finished(sid)]
    done_before = sum((out / "done" / f"{sid}.json").exists() for sid, _ in pairs)
    skipped_before = len(pairs) - len(pending) - done_before
    state.wait_for_everyone()  # every process has the same pending list before anyone adds to done/
    recipe = {k: getattr(cfg, k) for k in ("fill_model", "redux_model", "size", "steps", "guidance", "dtype")}
    made = skipped = 0
    with state.split_between_processes(pending) as mine:
        if mine:
            segmenter = get_segmenter(cfg.segmenter, **_segmenter_kwargs(cfg))
            if inpainter is None:
                from labkit.flux import FluxInpainter

                inpainter = FluxInpainter(
                    cfg.fill_model, cfg.redux_model, dtype=cfg.dtype, device=cfg.device or str(state.device),
                    cpu_offload=cfg.cpu_offload, prompt=cfg.prompt,
                )
        bar = tqdm(mine, desc=f"generate (process {state.process_index})", unit="original", disable=not state.is_local_main_process)
        for sid, path in bar:
            try:
                prepared = prepare_original(path, sid, gallery, cfg, segmenter)
            except SegmentationError as exc:
                if strict:
                    raise SegmentationError(f"{path}: {exc}") from exc
                _write_json(out / "skipped" / f"{sid}.json", {"id": sid, "source_path": str(path), "error": str(exc)})
                skipped += 1
                continue
            candidates = generate_candidates(inpainter, prepared, cfg)
            work = out / "work" / sid
            work.mkdir(parents=True, exist_ok=True)
            files_rec = {}
            for name in ("original", "reference", "placeholder", "mask", "initial"):
                prepared[name].save(work / f"{name}.png")
                files_rec[name] = f"work/{sid}/{name}.png"
            prepared["segmentation"].crop.save(work / "product.png")
            files_rec["product"] = f"work/{sid}/product.png"
            files_rec["candidates"] = []
            for letter, cand in zip(LETTERS, candidates):
                cand.save(work / f"candidate_{letter}.png")
                files_rec["candidates"].append(f"work/{sid}/candidate_{letter}.png")
            _write_json(out / "done" / f"{sid}.json", {
                "id": sid, "source_path": str(path), "files": files_rec, "layout": prepared["layout"].to_dict(),
                "seeds": prepared["seeds"], "background": str(prepared["background"]),
                "bbox": list(prepared["segmentation"].bbox), "segmenter": cfg.segmenter,
                "recipe": recipe, "fingerprint": fingerprint,
            })
            made += 1
    state.wait_for_everyone()
    summary = {"originals": len(pairs), "made_now": made, "skipped_now": skipped, "out": str(out)}
    if state.is_main_process:
        records = [json.loads((out / "done" / f"{sid}.json").read_text()) for sid, _ in pairs if (out / "done" / f"{sid}.json").exists()]
        summary["skipped"] = sum((out / "skipped" / f"{sid}.json").exists() for sid, _ in pairs)
        summary["samples"] = len(records)
        # Counts over all processes (each process only knows its own share).
        summary["made_now"] = len(records) - done_before
        summary["skipped_now"] = summary["skipped"] - skipped_before
        if not records:
            raise GenerationError(f"no original could be used (all {len(pairs)} skipped; reasons in {out / 'skipped'})")
        save_split([_sample_from_record(out, r) for r in records], out, "exploration", name=out.name)
        summary["split"] = str(out / "exploration.parquet")
    return summary
