"""Generation pipeline (labkit.generate, labkit.flux, labkit.diffusion_models, labkit generate CLI).

Geometry of placeholder / initial image / mask, both layouts, the tiny FLUX Fill + Redux
pipelines making 4 candidates from a real photograph (scikit-image's coffee), seeds,
resume, bad inputs, and the CLI end to end.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.compose import draw_layout, make_initial
from labkit.generate import (
    GenerateConfig,
    GenerationError,
    generate_candidates,
    load_generate_recipe,
    prepare_original,
    run_generation,
)
from labkit.segment import SegmentationError, threshold_segment

SIZE = 64  # each half; the initial image is 128x64
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    """Originals: a crop of scikit-image's coffee photo (the cup) pasted on white, as a packshot,
    plus a second one (chelsea) saved as CMYK JPEG. Backgrounds: astronaut and rocket photos."""
    skdata = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("gen-inputs")
    (root / "originals").mkdir()
    (root / "backgrounds").mkdir()
    cup = Image.fromarray(skdata.coffee()).crop((170, 20, 470, 320)).resize((90, 90), Image.LANCZOS)
    packshot = Image.new("RGB", (200, 160), "white")
    packshot.paste(cup, (60, 40))
    packshot.save(root / "originals" / "cup.png")
    cat = Image.new("RGB", (160, 200), "white")
    cat.paste(Image.fromarray(skdata.chelsea()).resize((70, 50)), (40, 100))
    cat.convert("CMYK").save(root / "originals" / "cat.jpg")
    Image.fromarray(skdata.astronaut()).resize((160, 160)).save(root / "backgrounds" / "astronaut.png")
    Image.fromarray(skdata.rocket()).save(root / "backgrounds" / "rocket.jpg")
    return root


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    """Tiny random FLUX Fill + Redux, built once (labkit.diffusion_models)."""
    from labkit.diffusion_models import build_tiny_flux

    return build_tiny_flux(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture(scope="module")
def inpainter(tiny_flux):
    from labkit.flux import FluxInpainter

    return FluxInpainter(str(tiny_flux["fill"]), str(tiny_flux["redux"]), device="cpu")


def small_config(tiny_flux=None, **kw) -> GenerateConfig:
    paths = {"fill_model": str(tiny_flux["fill"]), "redux_model": str(tiny_flux["redux"])} if tiny_flux else {}
    return GenerateConfig(**{"size": SIZE, "steps": 2, "device": "cpu", **paths, **kw}).validate()


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("layout", ["top_bottom", "left_right"])
def test_initial_image_and_mask_geometry(photo_dirs, layout):
    # For each layout: the initial image is reference | placeholder (128x64); the mask's left
    # half is black, its right half white except exactly the product's pixels (black); the
    # placeholder's product pixels equal the segmented crop resized into the product box,
    # everything else on the placeholder is white; the product lies in the layout's region.
    cfg = small_config(layouts=[layout])
    gallery = sorted((photo_dirs / "backgrounds").iterdir())
    p = prepare_original(photo_dirs / "originals" / "cup.png", "gen-cup", gallery, cfg)
    initial, mask, ph, ref = (np.asarray(p[k]) for k in ("initial", "mask", "placeholder", "reference"))
    assert p["initial"].size == (2 * SIZE, SIZE) and p["mask"].size == (2 * SIZE, SIZE) and p["mask"].mode == "L"
    assert np.array_equal(initial[:, :SIZE], ref) and np.array_equal(initial[:, SIZE:], ph)
    assert not mask[:, :SIZE].any()  # left half black: the reference is kept
    assert set(np.unique(mask[:, SIZE:])) == {0, 255}
    product = mask[:, SIZE:] == 0
    lay = p["layout"]
    assert lay.name == layout
    left, top, right, bottom = lay.product_box
    # The product pixels (and only they) are black on the right half of the mask.
    seg = threshold_segment(photo_dirs / "originals" / "cup.png")
    expected = seg.crop.resize((right - left, bottom - top), Image.LANCZOS)
    alpha = np.asarray(expected.getchannel("A")) >= 128
    assert np.array_equal(product[top:bottom, left:right], alpha)
    assert product.sum() == alpha.sum() > 0.2 * (right - left) * (bottom - top)
    assert np.array_equal(ph[top:bottom, left:right][alpha], np.asarray(expected.convert("RGB"))[alpha])
    assert np.all(ph[~product] == 255)
    rx0, ry0, rx1, ry1 = lay.region
    assert rx0 <= left and ry0 <= top and right <= rx1 and bottom <= ry1
    if layout == "top_bottom":
        assert lay.side == "bottom" and top >= SIZE * 0.4
    else:
        assert lay.side in ("left", "right")
        assert (right <= SIZE // 2) if lay.side == "left" else (left >= SIZE // 2)


def test_layouts_are_drawn_with_the_seed():
    # Both layouts and both left/right sides occur over 40 seeds; a seed always gives the same layout.
    draws = [draw_layout(random.Random(s), SIZE) for s in range(40)]
    assert {d.name for d in draws} == {"top_bottom", "left_right"}
    assert {d.side for d in draws if d.name == "left_right"} == {"left", "right"}
    assert draws[7] == draw_layout(random.Random(7), SIZE)


def test_make_initial_rejects_mismatched_sizes():
    # Reference, placeholder and product mask of different sizes are an error, not a silent resize.
    with pytest.raises(GenerationError, match="must all be 64x64"):
        make_initial(Image.new("RGB", (32, 32)), Image.new("RGB", (64, 64)), np.zeros((64, 64), bool))


# ----------------------------------------------------------------------------- the tiny pipeline

def test_tiny_pipeline_makes_four_candidates_reproducibly(photo_dirs, inpainter):
    # 4 candidates of 64x64 (the right half) from the coffee photo; the same seeds give
    # identical candidates; different candidates (different seeds) differ from each other.
    cfg = small_config()
    gallery = sorted((photo_dirs / "backgrounds").iterdir())
    p = prepare_original(photo_dirs / "originals" / "cup.png", "gen-cup", gallery, cfg)
    assert len(set(p["seeds"]["candidates"])) == 4
    first = generate_candidates(inpainter, p, cfg)
    assert len(first) == 4 and all(c.size == (SIZE, SIZE) and c.mode == "RGB" for c in first)
    again = generate_candidates(inpainter, prepare_original(photo_dirs / "originals" / "cup.png", "gen-cup", gallery, cfg), cfg)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    arrays = [np.asarray(c, dtype=np.int16) for c in first]
    assert all(np.abs(arrays[i] - arrays[j]).mean() > 1 for i in range(4) for j in range(i + 1, 4))
    # A different base seed changes the per-original seeds and hence the candidates.
    other = prepare_original(photo_dirs / "originals" / "cup.png", "gen-cup", gallery, small_config(seed=1))
    assert other["seeds"] != p["seeds"]


def test_missing_model_paths_give_clear_errors(tmp_path, tiny_flux):
    # A missing fill folder, a folder that is not a pipeline, and a missing redux folder.
    from labkit.flux import FluxInpainter, ModelLoadError

    with pytest.raises(ModelLoadError, match="fill_model .*does not exist"):
        FluxInpainter(str(tmp_path / "nope" / "fill"), str(tiny_flux["redux"]))
    with pytest.raises(ModelLoadError, match="without model_index.json"):
        FluxInpainter(str(tmp_path), str(tiny_flux["redux"]))
    with pytest.raises(ModelLoadError, match="redux_model .*does not exist"):
        FluxInpainter(str(tiny_flux["fill"]), str(tmp_path / "redux"))


@pytest.mark.parametrize(
    "settings, message",
    [({"size": 60}, "multiple of 16"), ({"candidates": 3}, "must be 4"), ({"layouts": ["diagonal"]}, "layouts"), ({"colour": 1}, "unknown key")],
)
def test_bad_recipes_are_rejected(tmp_path, settings, message):
    # Recipes with an unusable size, candidate count, layout or an unknown key name the problem.
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"size": 64, **settings}))
    with pytest.raises(GenerationError, match=message):
        load_generate_recipe(path)


def test_run_resumes_and_skips_bad_originals(photo_dirs, tmp_path, inpainter):
    # An interrupted run (only the first original done) resumes without redoing it; an image
    # with no foreground is skipped with its reason recorded; changed settings are refused.
    originals = tmp_path / "originals"
    originals.mkdir()
    for f in (photo_dirs / "originals").iterdir():
        (originals / f.name).write_bytes(f.read_bytes())
    Image.new("RGB", (80, 80), "white").save(originals / "blank.png")
    out = tmp_path / "out"
    cfg = small_config()
    # Sorted originals: blank.png, cat.jpg, cup.png; "interrupted" after the first two.
    first = run_generation(originals, out, cfg, backgrounds=photo_dirs / "backgrounds", limit=2, inpainter=inpainter)
    assert (first["made_now"], first["skipped_now"], first["samples"]) == (1, 1, 1)
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "done").iterdir()}
    assert list(done_before) == ["gen-cat.json"]
    second = run_generation(originals, out, cfg, backgrounds=photo_dirs / "backgrounds", inpainter=inpainter)
    assert (second["made_now"], second["skipped_now"]) == (1, 0)  # only cup.png is new
    assert (second["originals"], second["samples"], second["skipped"]) == (3, 2, 1)
    for name, mtime in done_before.items():
        assert (out / "done" / name).stat().st_mtime_ns == mtime  # not redone
    assert "no foreground found" in json.loads((out / "skipped" / "gen-blank.json").read_text())["error"]
    with pytest.raises(GenerationError, match="different settings"):
        run_generation(originals, out, small_config(steps=3), backgrounds=photo_dirs / "backgrounds", inpainter=inpainter)
    with pytest.raises(SegmentationError, match="blank.png: no foreground"):
        run_generation(originals, tmp_path / "strict", cfg, backgrounds=photo_dirs / "backgrounds", strict=True, inpainter=inpainter)


def test_empty_folders_are_errors(tmp_path, inpainter):
    # Originals or backgrounds folders without images (or missing) name the folder.
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenerationError, match="originals folder .* holds no images"):
        run_generation(tmp_path / "empty", tmp_path / "o", small_config(), backgrounds=tmp_path, inpainter=inpainter)
    with pytest.raises(FileNotFoundError, match="originals folder"):
        run_generation(tmp_path / "missing", tmp_path / "o", small_config(), inpainter=inpainter)


# ----------------------------------------------------------------------------- CLI

@pytest.mark.slow
def test_cli_end_to_end_writes_a_loadable_exploration_split(photo_dirs, tmp_path):
    # `labkit generate` in a fresh process, with a recipe that builds the tiny models on first
    # use: a loadable exploration split with 2 unlabelled generated samples of 4 candidates of
    # 64x64, whose meta keeps seeds, layout and the intermediate images (files that exist).
    from labkit.data import load_split

    import yaml

    recipe = yaml.safe_load((REPO / "recipes/generate/small.yaml").read_text())
    recipe.update(fill_model=str(tmp_path / "tiny/fill"), redux_model=str(tmp_path / "tiny/redux"))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "generated"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "labkit", "generate", "--originals", str(photo_dirs / "originals"),
           "--backgrounds", str(photo_dirs / "backgrounds"), "--out", str(out), "--recipe", str(tmp_path / "r.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exploration split: 2 samples" in proc.stdout
    ds = load_split(out, "exploration")
    assert len(ds) == 2
    for row in ds:
        assert row["source"] == "generated" and row["split"] == "exploration"
        assert row["answer"] is None and row["dimension"] is None and row["candidate_defects"] is None
        assert [c.size for c in row["candidates"]] == [(SIZE, SIZE)] * 4
        meta = json.loads(row["meta"])
        assert len(meta["seeds"]["candidates"]) == 4 and meta["layout"]["name"] in ("top_bottom", "left_right")
        for key in ("placeholder", "mask", "initial", "reference"):
            assert (out / meta["paths"][key]).exists()
        assert Image.open(out / meta["paths"]["initial"]).size == (2 * SIZE, SIZE)


def test_cli_bad_recipe_is_a_one_line_error(photo_dirs, tmp_path, capsys):
    # A missing recipe file: exit code 1 and one line naming it, no traceback.
    from labkit.cli import main

    code = main(["generate", "--originals", str(photo_dirs / "originals"), "--out", str(tmp_path / "o"),
                 "--recipe", str(tmp_path / "missing.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and "missing.yaml" in err and "not found" in err and "Traceback" not in err


def test_default_gallery_comes_from_the_synthetic_scenes(photo_dirs, tmp_path, inpainter):
    # Without --backgrounds, gallery_size synthetic scene backgrounds (labkit.synth) are written
    # to OUT/backgrounds at the half size and the references are drawn from them.
    out = tmp_path / "out"
    summary = run_generation(photo_dirs / "originals", out, small_config(gallery_size=3), limit=1, inpainter=inpainter)
    assert summary["samples"] == 1
    backgrounds = sorted((out / "backgrounds").glob("*.png"))
    assert len(backgrounds) == 3 and all(Image.open(p).size == (SIZE, SIZE) for p in backgrounds)
    record = json.loads(next((out / "done").glob("*.json")).read_text())
    assert Path(record["background"]).parent == out / "backgrounds"


def test_shipped_recipes_load_and_paper_recipe_needs_opt_in(photo_dirs, tmp_path):
    # small.yaml: tiny models on CPU; paper.yaml: FLUX.1-Fill-dev + FLUX.1-Redux-dev in bf16,
    # 4 candidates, BiRefNet, which stops the run (before any model loads) without the opt-in.
    small = load_generate_recipe(REPO / "recipes/generate/small.yaml")
    assert small.fill_model.endswith("tiny-flux/fill") and small.build_tiny_if_missing and small.device == "cpu"
    paper = load_generate_recipe(REPO / "recipes/generate/paper.yaml")
    assert (paper.fill_model, paper.redux_model) == ("black-forest-labs/FLUX.1-Fill-dev", "black-forest-labs/FLUX.1-Redux-dev")
    assert (paper.dtype, paper.candidates, paper.segmenter, paper.trust_remote_code) == ("bfloat16", 4, "birefnet", False)
    with pytest.raises(SegmentationError, match="trust_remote_code"):
        run_generation(photo_dirs / "originals", tmp_path / "o", paper, backgrounds=photo_dirs / "backgrounds")
    with pytest.raises(GenerationError, match="segmenter_options"):
        GenerateConfig(segmenter_options={"model": "x"}).validate()
