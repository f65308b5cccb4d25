"""Segmentation (labkit.segment): threshold + largest component, non-RGB modes, errors, BiRefNet opt-in."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from labkit.segment import (
    BiRefNetSegmenter,
    SegmentationError,
    ThresholdSegmenter,
    get_segmenter,
    threshold_segment,
)

BOX = (50, 40, 130, 100)  # where the photo is pasted: 80x60 px


@pytest.fixture(scope="module")
def cat():
    """A real photograph (scikit-image's chelsea), resized to 80x60."""
    skdata = pytest.importorskip("skimage.data")
    return Image.fromarray(skdata.chelsea()).resize((80, 60), Image.LANCZOS)


@pytest.fixture(scope="module")
def packshot(cat):
    """The photo pasted on a white 200x160 canvas: a packshot on a plain background."""
    canvas = Image.new("RGB", (200, 160), "white")
    canvas.paste(cat, BOX[:2])
    return canvas


def test_threshold_finds_the_pasted_photo(packshot, cat):
    # The bbox is exactly the pasted rectangle, the mask covers all of it (80*60 px)
    # and nothing else, and the crop's pixels are the photo's.
    seg = threshold_segment(packshot)
    assert seg.bbox == BOX
    assert seg.mask.mode == "L" and seg.mask.size == packshot.size
    assert int(seg.mask_array.sum()) == 80 * 60
    assert seg.crop.mode == "RGBA" and seg.crop.size == (80, 60)
    assert np.array_equal(np.asarray(seg.crop)[..., :3], np.asarray(cat))
    assert np.all(np.asarray(seg.crop)[..., 3] == 255)
    assert seg.area_fraction == pytest.approx(80 * 60 / (200 * 160))


def test_largest_component_wins_and_holes_are_filled():
    # Two dark blobs: the larger (30x30) is the product, the smaller (5x5) is dropped;
    # a white "label" (10x10) inside the product stays part of it (holes filled).
    arr = np.full((100, 100, 3), 255, np.uint8)
    arr[10:40, 10:40] = (20, 60, 120)
    arr[20:30, 20:30] = 255
    arr[80:85, 80:85] = (0, 0, 0)
    seg = threshold_segment(Image.fromarray(arr))
    assert seg.bbox == (10, 10, 40, 40)
    assert int(seg.mask_array.sum()) == 900
    assert not seg.mask_array[80:85, 80:85].any()


def test_background_colour_is_read_from_the_border():
    # A product on a plain grey (not white) background is found as well.
    arr = np.full((64, 64, 3), 128, np.uint8)
    arr[20:50, 16:40] = (200, 30, 30)
    assert threshold_segment(Image.fromarray(arr)).bbox == (16, 20, 40, 50)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_non_rgb_modes_give_the_same_product(packshot, mode):
    # Greyscale, palette, CMYK, 16-bit and opaque alpha images are segmented like the RGB one.
    if mode == "I;16":
        img = Image.fromarray(np.asarray(packshot.convert("L")).astype(np.uint16) * 257)
    else:
        img = packshot.convert(mode)
    assert img.mode == mode
    seg = threshold_segment(img)
    assert seg.bbox == BOX
    assert seg.image.mode == "RGB" and seg.crop.mode == "RGBA"


def test_transparent_background_uses_alpha(cat):
    # An RGBA cut-out with a transparent (black RGB) background: alpha decides, not colour.
    rgba = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    rgba.paste(cat.convert("RGBA"), BOX[:2])
    seg = threshold_segment(rgba)
    assert seg.bbox == BOX
    assert int(seg.mask_array.sum()) == 80 * 60
    # Same through a file (PNG round trip) given as a path and as bytes.
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    assert threshold_segment(buf.getvalue()).bbox == BOX


@pytest.mark.parametrize(
    "image, message",
    [
        (Image.new("RGB", (100, 100), "white"), "no foreground found"),
        (Image.new("RGB", (10, 50), "white"), "too small"),
        (b"not an image at all", "unreadable"),
        ("/nonexistent/photo.jpg", "does not exist"),
        (Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "no plain background"),
        (12345, "unsupported type"),
    ],
)
def test_bad_inputs_raise_clear_errors(image, message):
    # Each bad input raises SegmentationError (a ValueError) whose message names the problem.
    with pytest.raises(SegmentationError, match=message):
        threshold_segment(image)


def test_threshold_segmenter_interface(packshot):
    # The Segmenter interface returns the same as the function; options are passed through.
    assert get_segmenter("threshold").segment(packshot).bbox == BOX
    assert isinstance(get_segmenter("threshold", threshold=10), ThresholdSegmenter)
    with pytest.raises(ValueError, match="unknown segmenter"):
        get_segmenter("sam")


def test_birefnet_needs_opt_in_and_reports_missing_weights(tmp_path):
    # Without trust_remote_code nothing is loaded and the error says how to opt in;
    # with it, a missing local folder / unreachable hub gives a clear load error.
    with pytest.raises(SegmentationError, match="trust_remote_code"):
        BiRefNetSegmenter()
    with pytest.raises(SegmentationError, match="trust_remote_code"):
        get_segmenter("birefnet", model=str(tmp_path))
    with pytest.raises(SegmentationError, match="could not load BiRefNet weights"):
        get_segmenter("birefnet", model=str(tmp_path / "missing"), trust_remote_code=True)


def test_threshold_refuses_a_product_covering_most_of_the_photo():
    # A "product" over 60 % of the photo is refused (likely background), or only warned about with force.
    import warnings

    from labkit.segment import SegmentationError, ThresholdSegmenter, threshold_segment

    img = Image.new("RGB", (100, 100), "white")
    img.paste((200, 30, 30), (10, 10, 90, 90))          # 64 % of the photo
    with pytest.raises(SegmentationError, match="covers 64% of the photo"):
        threshold_segment(img)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = ThresholdSegmenter(force=True).segment(img)
    assert seg.area_fraction == pytest.approx(0.64) and "covers 64%" in str(caught[0].message)
    small = Image.new("RGB", (100, 100), "white")
    small.paste((200, 30, 30), (30, 30, 70, 70))        # 16 %: fine, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert threshold_segment(small).area_fraction == pytest.approx(0.16)
