"""FLUX.1 Fill inpainting conditioned on FLUX.1 Redux embeddings of a reference image (diffusers).

Step 5 of the paper's generation pipeline: ``FluxPriorReduxPipeline`` turns the reference
background into prompt embeddings; ``FluxFillPipeline`` redraws the white area of the mask
of the side-by-side initial image with them. One call per candidate seed, each with its own
CPU ``torch.Generator``, so a candidate depends only on its seed (not on batching, device or
the other candidates).

    from labkit.flux import FluxInpainter
    inpainter = FluxInpainter(fill_model="data/models/tiny-flux/fill", redux_model="data/models/tiny-flux/redux")
    embeds = inpainter.reference_embeddings(reference)          # once per original
    full = inpainter.inpaint(initial, mask, embeds, seed=123, steps=2, guidance=30.0)

On a GPU: ``dtype="bfloat16"``, and ``cpu_offload="model"`` (or ``"sequential"``, slower,
least memory) when the 12B transformer and its helpers do not fit together.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

DTYPES = ("float32", "bfloat16", "float16")
OFFLOADS = ("none", "model", "sequential")


class ModelLoadError(ValueError):
    """A FLUX model that cannot be found or loaded; the message names the path or id."""


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``owner/name``; anything else (absolute, relative, deeper) is a local path."""
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or os.sep != "/" and os.sep in name


def check_model_location(name: str, what: str) -> str:
    """Fail early, naming the problem, for a model path that does not exist."""
    if not name:
        raise ModelLoadError(f"{what} is empty; set it in the recipe")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model_index.json").exists():
            raise ModelLoadError(f"{what} {name!r} is a folder without model_index.json (not a diffusers pipeline)")
        return str(path)
    if _looks_like_path(name):
        hint = " (build the tiny one with: labkit build-diffusion --out data/models/tiny-flux)" if "tiny" in name else ""
        raise ModelLoadError(f"{what} {name!r} does not exist{hint}")
    return name  # a hub id such as black-forest-labs/FLUX.1-Fill-dev


class FluxInpainter:
    """Loaded Fill + Redux pipelines and the settings to run them."""

    def __init__(
        self,
        fill_model: str,
        redux_model: str,
        dtype: str = "float32",
        device: str | None = None,
        cpu_offload: str = "none",
        prompt: str = "",
    ):
        import torch
        from diffusers import FluxFillPipeline, FluxPriorReduxPipeline

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        if cpu_offload not in OFFLOADS:
            raise ValueError(f"unknown cpu_offload {cpu_offload!r}; expected one of {', '.join(OFFLOADS)}")
        fill_loc = check_model_location(fill_model, "fill_model")
        redux_loc = check_model_location(redux_model, "redux_model")
        torch_dtype = getattr(torch, dtype)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.prompt = prompt
        try:
            # Redux supplies the prompt embeddings, so Fill's text encoders (T5-XXL: ~9 GB) are not loaded.
            self.fill = FluxFillPipeline.from_pretrained(
                fill_loc, dtype=torch_dtype, text_encoder=None, text_encoder_2=None, tokenizer=None, tokenizer_2=None
            )
        except Exception as exc:
            raise ModelLoadError(f"could not load FluxFillPipeline from {fill_model!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        try:
            self.redux = FluxPriorReduxPipeline.from_pretrained(redux_loc, dtype=torch_dtype)
        except Exception as exc:
            raise ModelLoadError(f"could not load FluxPriorReduxPipeline from {redux_model!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        for pipe in (self.fill, self.redux):
            pipe.set_progress_bar_config(disable=True)
            if cpu_offload == "model":
                pipe.enable_model_cpu_offload(device=self.device)
            elif cpu_offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)
        self.multiple = self.fill.vae_scale_factor * 2  # height/width must be multiples of this

    def reference_embeddings(self, reference: Image.Image) -> dict[str, Any]:
        """Redux prompt embeddings of the reference image (``prompt_embeds``, ``pooled_prompt_embeds``)."""
        import torch

        kwargs = {}
        # The real Redux repository has no text encoders (zero text embeddings); the tiny one
        # carries some, and then needs a prompt (an empty one by default).
        if getattr(self.redux, "text_encoder", None) is not None:
            kwargs["prompt"] = self.prompt
        with torch.inference_mode():
            out = self.redux(image=reference.convert("RGB"), **kwargs)
        return {"prompt_embeds": out.prompt_embeds, "pooled_prompt_embeds": out.pooled_prompt_embeds}

    def inpaint(
        self,
        initial: Image.Image,
        mask: Image.Image,
        embeddings: dict[str, Any],
        seed: int,
        steps: int = 50,
        guidance: float = 30.0,
    ) -> Image.Image:
        """Inpaint the white area of ``mask`` in ``initial``; returns the full image (initial's size)."""
        import torch

        width, height = initial.size
        if width % self.multiple or height % self.multiple:
            raise ValueError(f"initial image {width}x{height}: both sides must be multiples of {self.multiple}")
        if mask.size != initial.size:
            raise ValueError(f"mask {mask.size} and initial image {initial.size} differ in size")
        generator = torch.Generator("cpu").manual_seed(int(seed))
        with torch.inference_mode():
            out = self.fill(
                image=initial.convert("RGB"), mask_image=mask.convert("L"), height=height, width=width,
                num_inference_steps=steps, guidance_scale=guidance, generator=generator, **embeddings,
            )
        return out.images[0]
