"""Product segmentation: a binary foreground mask and the product cut out of its photo.

Step 1 of the paper's generation pipeline (../shared/paper.md, Generation pipeline). Two
segmenters share one interface (`Segmenter.segment(image) -> Segmentation`):

* ``threshold`` (the offline default, `threshold_segment`): for packshots on a plain
  background. The background colour is read from the image border, pixels that differ from
  it by more than ``threshold`` are foreground, and the largest connected component (holes
  filled, so white labels inside the product stay part of it) is the product. Images with
  real transparency (RGBA, LA, P with a transparent colour) use their alpha channel instead.
* ``birefnet`` (`BiRefNetSegmenter`): BiRefNet through transformers'
  ``AutoModelForImageSegmentation``, as in the paper. Its modelling code lives in the model
  repository, so it loads only when the user opts in with ``trust_remote_code=True``.

Usage::

    from labkit.segment import threshold_segment, get_segmenter
    seg = threshold_segment("packshot.jpg")          # Segmentation(mask, crop, bbox)
    seg.crop.save("product.png")                     # RGBA, cropped to the product
    seg = get_segmenter("birefnet", model="ZhengPeng7/BiRefNet", trust_remote_code=True).segment(img)
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

MIN_SEGMENT_SIDE = 16  # below this a border/background estimate is meaningless


class SegmentationError(ValueError):
    """An image that cannot be segmented; the message names the problem."""


@dataclass
class Segmentation:
    """A segmented product.

    ``mask``: PIL "L" image of the source's size, 255 = product, 0 = background.
    ``crop``: the product cut out, RGBA, cropped to ``bbox``; alpha = the mask.
    ``bbox``: (left, top, right, bottom) of the product in the source, right/bottom exclusive.
    ``image``: the source image as RGB (what the mask refers to).
    """

    mask: Image.Image
    crop: Image.Image
    bbox: tuple[int, int, int, int]
    image: Image.Image

    @property
    def mask_array(self) -> np.ndarray:
        """The mask as a bool array (H, W), True = product."""
        return np.asarray(self.mask) > 127

    @property
    def area_fraction(self) -> float:
        """Share of the source's pixels that belong to the product."""
        return float(self.mask_array.mean())


# ----------------------------------------------------------------------------- loading

def load_image(image: Any, what: str = "image") -> Image.Image:
    """Open a PIL image, path or bytes; fully loaded, mode unchanged. SegmentationError if unreadable."""
    try:
        if isinstance(image, Image.Image):
            img = image
        elif isinstance(image, (bytes, bytearray)):
            img = Image.open(io.BytesIO(image))
        elif isinstance(image, (str, os.PathLike)):
            if not os.path.exists(image):
                raise SegmentationError(f"{what} {os.fspath(image)!r} does not exist")
            img = Image.open(image)
        elif isinstance(image, np.ndarray):
            img = Image.fromarray(image)
        else:
            raise SegmentationError(f"{what} has unsupported type {type(image).__name__}")
        img.load()
    except SegmentationError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt data
        raise SegmentationError(f"{what} is unreadable ({type(exc).__name__}: {exc})") from exc
    return img


def _alpha_of(img: Image.Image) -> np.ndarray | None:
    """The alpha channel (uint8 H×W) if the image has real transparency, else None."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() < 255:
            return alpha
    return None


def to_rgb(img: Image.Image, what: str = "image") -> Image.Image:
    """Any PIL mode as RGB; transparent areas become white (a packshot's plain background)."""
    try:
        if img.mode == "RGB":
            return img
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            # High bit-depth greyscale: rescale to 8 bit rather than clip.
            arr = np.asarray(img, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
            return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
        if img.mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except Exception as exc:
        raise SegmentationError(f"{what} has mode {img.mode!r}, which cannot be converted to RGB ({exc})") from exc


# ----------------------------------------------------------------------------- result

def segmentation_from_mask(image: Image.Image, mask: np.ndarray) -> Segmentation:
    """Build a `Segmentation` from an RGB image and a bool mask (True = product)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise SegmentationError("no foreground found: the mask is empty")
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    mask_img = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")
    crop = image.convert("RGBA")
    crop.putalpha(mask_img)
    return Segmentation(mask=mask_img, crop=crop.crop(bbox), bbox=bbox, image=image)


def _largest_component(fg: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask, holes filled."""
    from scipy import ndimage

    labels, n = ndimage.label(fg, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # label 0 is the background
    largest = labels == int(sizes.argmax())
    return ndimage.binary_fill_holes(largest)


def threshold_segment(
    image: Any,
    threshold: float = 30.0,
    min_area_fraction: float = 0.002,
    max_area_fraction: float = 0.995,
    background: tuple[int, int, int] | None = None,
    border: int = 2,
    max_product_fraction: float = 0.6,
    force: bool = False,
) -> Segmentation:
    """Segment a product photographed on a plain background.

    ``threshold``: a pixel is foreground when one of its RGB channels differs from the
    background colour by more than this (0–255). ``background``: the background colour; by
    default the per-channel median of a ``border``-pixel frame around the image. The product
    is the largest 8-connected foreground component, holes filled. Images with transparency
    use alpha ≥ 128 as the foreground instead.

    Raises SegmentationError when the image is unreadable, smaller than 16 px on a side, has
    no foreground (largest component under ``min_area_fraction`` of the image) or no
    background (over ``max_area_fraction``). A "product" over ``max_product_fraction`` of the
    photo (default 60 %) is almost always background or a busy scene taken for the product (real
    photographs gave 64-98 %): refused unless ``force``, which only warns.
    """
    img = load_image(image)
    w, h = img.size
    if min(w, h) < MIN_SEGMENT_SIDE:
        raise SegmentationError(f"image is too small to segment ({w}x{h}; min side {MIN_SEGMENT_SIDE} px)")
    if not 0 <= threshold < 255:
        raise SegmentationError(f"threshold must be in [0, 255), got {threshold}")
    alpha = _alpha_of(img)
    rgb = to_rgb(img)
    if alpha is not None:
        fg = alpha >= 128
    else:
        arr = np.asarray(rgb, dtype=np.int16)
        if background is None:
            b = max(1, min(border, min(w, h) // 4))
            frame = np.concatenate(
                [arr[:b].reshape(-1, 3), arr[-b:].reshape(-1, 3), arr[:, :b].reshape(-1, 3), arr[:, -b:].reshape(-1, 3)]
            )
            bg = np.median(frame, axis=0)
        else:
            bg = np.asarray(background, dtype=np.float64)
        fg = np.abs(arr - bg).max(axis=-1) > threshold
    mask = _largest_component(fg)
    frac = float(mask.mean())
    if frac < min_area_fraction:
        raise SegmentationError(
            f"no foreground found: the largest region differing from the background covers {frac:.2%} "
            f"of the image (min {min_area_fraction:.2%}); is the product on a plain background? "
            f"Try a lower threshold (now {threshold}) or the 'birefnet' segmenter"
        )
    if frac > max_area_fraction:
        raise SegmentationError(
            f"no plain background found: the foreground covers {frac:.2%} of the image; "
            f"the threshold segmenter needs a packshot on a plain background (try 'birefnet')"
        )
    if frac > max_product_fraction:
        msg = (f"the 'product' covers {frac:.0%} of the photo (more than {max_product_fraction:.0%}): the threshold "
               f"segmenter has probably taken the background or a busy scene for the product; use a packshot on a "
               f"plain background or the 'birefnet' segmenter")
        if not force:
            raise SegmentationError(msg + " (or force it: --force, segmenter option force: true)")
        warnings.warn(msg, stacklevel=2)
    return segmentation_from_mask(rgb, mask)


# ----------------------------------------------------------------------------- segmenters

class Segmenter:
    """The segmenter interface: ``segment(image) -> Segmentation`` (raises SegmentationError)."""

    name = "base"

    def segment(self, image: Any) -> Segmentation:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class ThresholdSegmenter(Segmenter):
    """Threshold + largest connected component (`threshold_segment`), for plain backgrounds."""

    threshold: float = field(default=30.0, metadata={"help": "max per-channel difference from the background colour"})
    min_area_fraction: float = field(default=0.002, metadata={"help": "smaller products count as 'no foreground'"})
    max_area_fraction: float = field(default=0.995, metadata={"help": "larger ones count as 'no plain background'"})
    max_product_fraction: float = field(default=0.6, metadata={"help": "a larger 'product' is refused (likely background), unless force"})
    force: bool = field(default=False, metadata={"help": "only warn when the product covers more than max_product_fraction"})
    name = "threshold"

    def segment(self, image: Any) -> Segmentation:
        return threshold_segment(
            image, threshold=self.threshold, min_area_fraction=self.min_area_fraction,
            max_area_fraction=self.max_area_fraction, max_product_fraction=self.max_product_fraction, force=self.force,
        )


class BiRefNetSegmenter(Segmenter):
    """BiRefNet (the paper's segmenter) through transformers' ``AutoModelForImageSegmentation``.

    BiRefNet's modelling code is not part of transformers: it runs code from the model
    repository, so it loads only with ``trust_remote_code=True`` (the user's explicit opt-in).
    ``model`` is a hub id (e.g. ``ZhengPeng7/BiRefNet``) or a local folder.
    """

    name = "birefnet"

    def __init__(
        self,
        model: str = "ZhengPeng7/BiRefNet",
        trust_remote_code: bool = False,
        device: str | None = None,
        resolution: int = 1024,
        mask_threshold: float = 0.5,
    ):
        if not trust_remote_code:
            raise SegmentationError(
                f"the BiRefNet segmenter runs modelling code shipped with the model {model!r}, which is off by "
                "default; opt in with trust_remote_code=True (CLI: --trust-remote-code) if you trust that "
                "repository, or use the 'threshold' segmenter"
            )
        import torch
        from transformers import AutoModelForImageSegmentation

        try:
            self.model = AutoModelForImageSegmentation.from_pretrained(model, trust_remote_code=True)
        except Exception as exc:  # OSError offline / missing folder, ValueError bad config, ...
            raise SegmentationError(
                f"could not load BiRefNet weights from {model!r} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                "download them first (huggingface-cli download ZhengPeng7/BiRefNet) or pass a local folder"
            ) from exc
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.resolution = resolution
        self.mask_threshold = mask_threshold

    def segment(self, image: Any) -> Segmentation:
        import torch

        img = load_image(image)
        if min(img.size) < MIN_SEGMENT_SIDE:
            raise SegmentationError(f"image is too small to segment ({img.size[0]}x{img.size[1]}; min side {MIN_SEGMENT_SIDE} px)")
        rgb = to_rgb(img)
        # BiRefNet's own preprocessing: square resize, ImageNet normalisation.
        x = np.asarray(rgb.resize((self.resolution, self.resolution), Image.BILINEAR), dtype=np.float32) / 255.0
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        tensor = torch.from_numpy(x.transpose(2, 0, 1))[None].to(self.device, next(self.model.parameters()).dtype)
        with torch.no_grad():
            pred = self.model(tensor)[-1].sigmoid().float().cpu()[0, 0].numpy()
        prob = np.asarray(Image.fromarray((pred * 255).astype(np.uint8), "L").resize(rgb.size, Image.BILINEAR))
        mask = prob >= self.mask_threshold * 255
        if not mask.any():
            raise SegmentationError("no foreground found: BiRefNet predicted an empty mask")
        return segmentation_from_mask(rgb, mask)


SEGMENTERS = {"threshold": ThresholdSegmenter, "birefnet": BiRefNetSegmenter}


def get_segmenter(name: str = "threshold", **kwargs) -> Segmenter:
    """A segmenter by name (``threshold`` or ``birefnet``); kwargs go to its constructor."""
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; expected one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)
