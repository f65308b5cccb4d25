"""Tests of the procedural screening data (labkit.synth): labels, determinism, pixels, photos, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from labkit.data import DEFECT_DIMENSIONS, DIMENSIONS, load_dataset_dir, load_split
from labkit.metrics import LETTERS
from labkit.synth import (
    DEFECT_KINDS, KIND_TO_DIMENSION, SynthConfig, background_gallery, build_spec, draw_product, make_dataset,
    make_defect, random_product, random_scene, render_background, render_candidate, render_sample, render_spec,
    split_plan,
)
from labkit.synth.defects import product_height

SIZE = 128


# ----------------------------------------------------------------------------- labels

def test_fixture_dataset_schema_and_label_consistency(synth_dataset):
    """Every split loads (schema-validated); tags are the four dimension names and agree with the
    finer kinds in meta; answers follow the defect-free letters; normal means all four acceptable;
    every defective candidate carries the focus dimension."""
    dd = load_dataset_dir(synth_dataset)
    assert {k: len(v) for k, v in dd.items()} == {"train": 24, "test": 20, "pseudo_label": 8, "exploration": 4}
    for split in ("train", "test", "pseudo_label"):
        for i, row in enumerate(dd[split]):
            prefix = {"train": "train", "test": "test", "pseudo_label": "pseudo"}[split]
            assert row["id"] == f"{prefix}-{i:06d}"
            meta = json.loads(row["meta"])
            assert row["dimension"] in DIMENSIONS
            for letter, tags, cand in zip(LETTERS, row["candidate_defects"], meta["candidates"]):
                assert set(tags) <= set(DEFECT_DIMENSIONS)
                # The dimension tags are exactly the dimensions of the finer kinds recorded in meta.
                assert tags == list(dict.fromkeys(KIND_TO_DIMENSION[k] for k in cand["kinds"]))
                assert (letter in row["answer"]) == (not tags)
                if tags:
                    assert tags[0] == row["dimension"]
            if row["dimension"] == "normal":
                assert row["answer"] == "ABCD"
            # Captions: one line per image; CoT walks A..D in order and ends in the answer.
            lines = row["caption"].split("\n")
            assert [line.split(":")[0] for line in lines] == ["Original", "A", "B", "C", "D"]
            cot = row["cot"]
            positions = [cot.index(f"{letter}:") for letter in LETTERS]
            assert positions == sorted(positions)
            assert cot.rstrip().endswith(f"the answer is {row['answer']}.")
            assert "<think>" not in cot and "<answer>" not in cot
    for row in dd["exploration"]:
        assert row["answer"] is None and row["dimension"] is None and row["candidate_defects"] is None
        truth = json.loads(row["meta"])["truth"]
        assert truth["answer"] == ("".join(l for l, t in zip(LETTERS, truth["candidate_defects"]) if not t) or "N")


def test_defect_tags_name_the_defects_drawn():
    """A candidate whose defect is 'floating' is tagged placement_layout, 'shadow_missing'
    physical_shadow, and so on for every finer kind."""
    cfg = SynthConfig(size=64)
    for index in range(40):
        spec, _ = build_spec(index, "train", cfg)
        for defects, tags in zip(spec.defects, spec.candidate_defects):
            assert tags == list(dict.fromkeys(_dimension_of(d) for d in defects))


def _dimension_of(record):
    """The dimension of a defect record, checking that its finer kind belongs to it."""
    assert record["kind"] in DEFECT_KINDS[record["dimension"]]
    return record["dimension"]


def test_default_mix_follows_the_paper():
    """Stratified plan: a 400-sample test split has mean answer length within 0.01 of 1.7136 and
    appearance deformation as the most common focus dimension; options change the mix."""
    cfg = SynthConfig()
    plan = split_plan("test", 400, cfg)
    lengths = [1 if k == 0 else k for _, k in plan]
    assert abs(np.mean(lengths) - 1.7136) < 0.01
    counts = {d: sum(1 for f, _ in plan if f == d) for d in DIMENSIONS}
    assert max(counts, key=counts.get) == "appearance_deformation"
    assert all(k == 4 for f, k in plan if f == "normal")
    # A mix with only one dimension and always 0 acceptable gives only "N" answers.
    only = SynthConfig(dimension_mix={"physical_shadow": 1.0}, acceptable_counts=(1, 0, 0, 0))
    spec, _ = build_spec(0, "test", only, *split_plan("test", 1, only)[0])
    assert spec.answer == "N" and all(t == ["physical_shadow"] for t in spec.candidate_defects)


def test_kind_weights_and_product_kinds_steer_the_draw():
    """kind_weights of 0 remove a finer kind; product_kinds restricts the drawn products."""
    cfg = SynthConfig(size=48, dimension_mix={"placement_layout": 1.0}, kind_weights={"floating": 0, "tilt": 0},
                      product_kinds=("bottle",), secondary_rate=0.0)
    kinds = set()
    for index in range(30):
        spec, _ = build_spec(index, "train", cfg)
        assert spec.product.kind == "bottle"
        kinds |= {d["kind"] for ds in spec.defects for d in ds}
    assert kinds == {"sinking", "wrong_scale"}


def test_bad_options_are_named():
    """Bad options fail with errors that name them."""
    with pytest.raises(ValueError, match="at least 48"):
        SynthConfig(size=32)
    with pytest.raises(ValueError, match="severity"):
        SynthConfig(severity=(0.5, 1.5))
    with pytest.raises(ValueError, match="dimension_mix"):
        SynthConfig(dimension_mix={"lighting": 1.0})
    with pytest.raises(ValueError, match="kind_weights"):
        SynthConfig(kind_weights={"melting": 1.0})
    with pytest.raises(TypeError, match="colour_mode"):
        make_dataset("/nonexistent-never-written", train=1, colour_mode="x")


# ----------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes_other_seed_other_samples(tmp_path):
    """render_sample is a pure function of (index, split, config); make_dataset gives the same
    rows with 1 or 2 worker processes; another seed gives other images."""
    cfg = SynthConfig(size=64, seed=7)
    a, b = render_sample(3, "test", cfg), render_sample(3, "test", cfg)
    assert a == b
    c = render_sample(3, "test", SynthConfig(size=64, seed=8))
    assert c["original"]["bytes"] != a["original"]["bytes"]

    one = make_dataset(tmp_path / "one", train=5, test=4, size=64, seed=3, workers=1, shard_size=3, progress=False)
    two = make_dataset(tmp_path / "two", train=5, test=4, size=64, seed=3, workers=2, shard_size=3, progress=False)
    assert sorted(p.name for p in one.glob("*.parquet")) == sorted(p.name for p in two.glob("*.parquet"))
    for split in ("train", "test"):
        x, y = load_split(one, split, validate=False), load_split(two, split, validate=False)
        assert x["id"] == y["id"] and x["answer"] == y["answer"] and x["meta"] == y["meta"]
        for r1, r2 in zip(x.with_format("arrow")["candidates"].to_pylist(), y.with_format("arrow")["candidates"].to_pylist()):
            assert [c["bytes"] for c in r1] == [c["bytes"] for c in r2]


# ----------------------------------------------------------------------------- pixels

def _setup(seed=0, kind="box", surface="table"):
    rng = np.random.default_rng(seed)
    product = random_product(rng, kind)
    scene = random_scene(rng, surface)
    scene.props = []  # a bare scene: every pixel change comes from the candidate
    bg = render_background(scene, SIZE)
    placement = {"x": 0.5, "t": 0.7, "scale": 1.0}
    return rng, product, scene, bg, placement


def _diff(a, b):
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0


def _allowed(scene, boxes, pad):
    """Where a defect may change pixels: around the product's and the invented items' boxes,
    widened by how far a shadow can reach from them."""
    m = np.zeros((SIZE, SIZE), bool)
    for x0, y0, x1, y1 in boxes:
        h = y1 - y0
        reach = int(1.4 * h + (x1 - x0)) + pad
        m[max(0, y0 - pad): y1 + pad, max(0, x0 - reach): x1 + reach] = True
    return m


@pytest.mark.parametrize("severity", [1.0, 0.15])
def test_each_defect_changes_pixels_only_where_it_should(severity):
    """For every finer kind, at the obvious and the subtle end: some pixels change; nothing
    changes away from the product, its shadow and the invented items; shadow defects leave
    the product's pixels untouched and change only the surface; extension items (except
    decorations on the product's edges) leave the product's pixels untouched; appearance
    defects change the product's own pixels."""
    rng, product, scene, bg, placement = _setup()
    clean, info0 = render_candidate(bg, scene, product, placement, [])
    horizon = int(round(scene.horizon * SIZE))
    for dimension, kinds in DEFECT_KINDS.items():
        for kind in kinds:
            d = make_defect(kind, severity, rng, product)
            img, info = render_candidate(bg, scene, product, placement, [d])
            diff = _diff(img, clean)
            assert diff.sum() > 5, f"{kind} at severity {severity} changed almost nothing"
            pad = 4 + (int(d["params"].get("size", 0) * SIZE) if kind == "decoration" else 0)
            allowed = _allowed(scene, [info0["box"], info["box"], *info["extras"]], pad)
            assert not (diff & ~allowed).any(), f"{kind} changed pixels far from the product"
            if dimension == "physical_shadow":
                assert not diff[info0["mask"]].any(), f"{kind} changed the product itself"
                assert not diff[:horizon].any(), f"{kind} changed the wall"
            if dimension == "extension_rationality" and kind != "decoration":
                assert not diff[info0["mask"]].any(), f"{kind} covered the product"
                assert (diff & ~info0["mask"]).sum() > 5
            if dimension == "appearance_deformation":
                assert diff[info0["mask"] | info["mask"]].sum() > 3, f"{kind} left the product unchanged"


def test_every_label_is_true_to_the_pixels():
    """At the smallest allowed size and the subtlest severity, every defective candidate of a
    generated sample differs visibly (>= 3 pixels) from the same candidate drawn without its
    defects, and every acceptable candidate is exactly that clean drawing."""
    cfg = SynthConfig(size=48, severity=(0.0, 0.0), secondary_rate=0.0)
    seen = set()
    for index in range(60):
        spec, _ = build_spec(index, "train", cfg)
        bg = render_background(spec.scene, 48)
        _, cands, _ = render_spec(spec, 48)
        for placement, defects, img in zip(spec.placements, spec.defects, cands):
            clean, _ = render_candidate(bg, spec.scene, spec.product, placement, [])
            changed = int((np.abs(img.astype(int) - clean.astype(int)).sum(axis=2) > 24).sum())
            if defects:
                assert changed >= 3, f"sample {index}: {defects[0]['kind']} is invisible ({changed} px)"
                seen.add(defects[0]["kind"])
            else:
                assert changed == 0
    assert len(seen) >= 15  # most finer kinds were exercised


def test_acceptable_candidate_shows_the_clean_product():
    """An acceptable candidate's product region holds exactly the pixels of a clean render of
    the same product at the same size, for several generated samples."""
    cfg = SynthConfig(size=SIZE, seed=1)
    checked = 0
    for index in range(6):
        spec, _ = build_spec(index, "train", cfg)
        _, cands, infos = render_spec(spec, SIZE)
        for c, defects in enumerate(spec.defects):
            if defects:
                continue
            h = product_height(spec.product, spec.scene, spec.placements[c], SIZE)
            sprite = np.asarray(draw_product(spec.product, h))
            x0, y0, x1, y1 = infos[c]["box"]
            assert (x1 - x0, y1 - y0) == (sprite.shape[1], sprite.shape[0])
            opaque = sprite[..., 3] == 255
            region = cands[c][y0:y1, x0:x1]
            assert np.array_equal(region[opaque], sprite[..., :3][opaque])
            checked += 1
    assert checked >= 4


def test_floating_product_leaves_a_gap_above_its_shadow():
    """A floating product's lowest pixel is lifted by the defect's height above the surface row
    while its contact shadow stays on the surface; the clean product touches the surface."""
    rng, product, scene, bg, placement = _setup(seed=2)
    clean, info0 = render_candidate(bg, scene, product, placement, [])
    d = make_defect("floating", 0.6, rng, product)
    img, info = render_candidate(bg, scene, product, placement, [d])
    base = int(round(info["base"]))
    lowest_clean = np.nonzero(info0["mask"].any(axis=1))[0].max()
    lowest = np.nonzero(info["mask"].any(axis=1))[0].max()
    h = info0["box"][3] - info0["box"][1]
    assert lowest_clean >= base - 1
    gap = base - 1 - lowest
    assert abs(gap - d["params"]["lift"] * h) <= 2
    assert gap >= 0.2 * h
    x0, _, x1, _ = info["box"]
    cols = slice(x0 + 2, x1 - 2)
    gap_rows = slice(lowest + 2, base - 2)
    # The gap shows the surface, not the product ...
    assert not info["mask"][gap_rows, cols].any()
    # ... and the shadow still lies on the surface under it (darker than the bare surface).
    under = img[base - 2: base, cols].astype(float).mean()
    bare = bg[base - 2: base, cols].astype(float).mean()
    assert under < 0.9 * bare


def _darkening_by_side(img, bg, info, scene):
    dark = (bg.astype(float) - img.astype(float)).sum(axis=2)
    dark[info["mask"]] = 0
    dark[: int(round(scene.horizon * SIZE))] = 0
    x0, _, x1, _ = info["box"]
    return dark[:, :x0].sum(), dark[:, x1:].sum()


def test_shadow_against_light_falls_on_the_other_side():
    """The clean shadow falls away from the light (the side the scene's shadows fall to); the
    'against the light' defect puts it on the other side of the product."""
    for light in ("left", "right"):
        rng, product, scene, bg, placement = _setup(seed=3)
        scene.light = light
        bg = render_background(scene, SIZE)
        clean, info0 = render_candidate(bg, scene, product, placement, [])
        left, right = _darkening_by_side(clean, bg, info0, scene)
        assert (right > 3 * left) if light == "left" else (left > 3 * right)
        d = make_defect("shadow_against_light", 0.5, rng, product)
        img, info = render_candidate(bg, scene, product, placement, [d])
        left, right = _darkening_by_side(img, bg, info, scene)
        assert (left > 3 * right) if light == "left" else (right > 3 * left)


def test_background_gallery_is_deterministic_and_productless():
    """The gallery gives n backgrounds of the asked size, the same for the same seed, and each
    equals the scene generator's background (no product drawn)."""
    g1, g2 = background_gallery(3, size=96, seed=4), background_gallery(3, size=96, seed=4)
    assert len(g1) == 3 and all(im.size == (96, 96) for im in g1)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(g1, g2))
    assert not np.array_equal(np.asarray(g1[0]), np.asarray(background_gallery(1, size=96, seed=5)[0]))
    expected = render_background(random_scene(np.random.default_rng([4, 5, 0])), 96)
    assert np.array_equal(np.asarray(g1[0]), expected)


# ----------------------------------------------------------------------------- real photos

def _coffee_packshot(path):
    """A real photograph (scikit-image's coffee cup) cut with an ellipse onto a white canvas."""
    from skimage import data

    photo = Image.fromarray(data.coffee())
    cup = photo.crop((78, 60, 478, 400))
    mask = Image.new("L", cup.size, 0)
    from PIL import ImageDraw

    ImageDraw.Draw(mask).ellipse([0, 0, cup.size[0] - 1, cup.size[1] - 1], fill=255)
    canvas = Image.new("RGB", (520, 460), (255, 255, 255))
    canvas.paste(cup, (60, 60), mask)
    canvas.save(path)
    return np.asarray(cup), np.asarray(mask) > 0


def test_real_photo_originals(tmp_path):
    """A folder with a real photo becomes originals: the cut-out holds the photo's own pixels,
    samples validate, the original shows the photo and acceptable candidates show it unchanged."""
    from labkit.synth.products import product_from_photo

    folder = tmp_path / "photos"
    folder.mkdir()
    cup, inside = _coffee_packshot(folder / "coffee.png")
    product = product_from_photo(folder / "coffee.png")
    assert product.kind == "photo" and product.pixels.shape[:2] == cup.shape[:2]
    alpha = product.pixels[..., 3] >= 128
    # The segmenter found the cup (threshold + largest component): nearly the whole ellipse.
    assert (alpha & inside).sum() / inside.sum() > 0.97 and (alpha & ~inside).sum() / inside.sum() < 0.02
    both = alpha & inside
    assert np.abs(product.pixels[..., :3][both].astype(int) - cup[both].astype(int)).max() == 0

    out = make_dataset(tmp_path / "ds", train=4, size=96, seed=0, workers=1, originals_dir=folder, progress=False)
    rows = load_split(out, "train")
    assert len(rows) == 4
    meta = json.loads(rows[0]["meta"])
    assert meta["product"]["kind"] == "photo" and meta["product"]["photo"] == "coffee.png"
    original = np.asarray(rows[0]["original"])
    assert (np.abs(original.astype(int) - 255).sum(axis=2) > 30).mean() > 0.2  # the cup is there
    cfg = SynthConfig(size=96, originals=(str(folder / "coffee.png"),))
    for index in range(4):
        spec, _ = build_spec(index, "train", cfg)
        _, cands, infos = render_spec(spec, 96)
        for c, defects in enumerate(spec.defects):
            if not defects:
                h = product_height(spec.product, spec.scene, spec.placements[c], 96)
                sprite = np.asarray(draw_product(spec.product, h))
                x0, y0, x1, y1 = infos[c]["box"]
                opaque = sprite[..., 3] == 255
                assert np.array_equal(cands[c][y0:y1, x0:x1][opaque], sprite[..., :3][opaque])


def test_originals_folder_errors(tmp_path):
    """An empty or missing originals folder, or a photo with no product, fails naming it."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        make_dataset(tmp_path / "ds", train=1, size=64, originals_dir=tmp_path / "empty", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_dataset(tmp_path / "ds", train=1, size=64, originals_dir=tmp_path / "nope", progress=False)
    (tmp_path / "blank").mkdir()
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank" / "white.png")
    with pytest.raises(ValueError, match="white.png"):
        make_dataset(tmp_path / "ds", train=1, size=64, originals_dir=tmp_path / "blank", progress=False)


# ----------------------------------------------------------------------------- CLI

def test_cli_synth_and_show(tmp_path, synth_dataset, capsys):
    """`labkit synth` writes the splits and prints the mean answer length; `labkit show` writes a
    sheet of five tiles; an unknown id is a one-line error."""
    from labkit.cli import main

    assert main(["synth", "--out", str(tmp_path / "ds"), "--test", "5", "--size", "48", "--workers", "1",
                 "--no-progress", "--severity", "0.8", "1.0", "--cot-style", "short"]) == 0
    out = capsys.readouterr().out
    assert "test: 5 samples, mean answer length" in out
    meta = json.loads(load_split(tmp_path / "ds", "test")[0]["meta"])
    assert all(d["severity"] >= 0.8 for c in meta["candidates"] for d in c["defects"])
    assert load_split(tmp_path / "ds", "test")[0]["cot"].startswith("A: ")
    sheet = tmp_path / "sheet.png"
    assert main(["show", str(synth_dataset), "--id", "test-000001", "--out", str(sheet), "--tile", "96"]) == 0
    im = Image.open(sheet)
    assert im.size[0] == 5 * 96 + 36
    assert main(["show", str(synth_dataset), "--id", "explore-000000", "--out", str(tmp_path / "e.png")]) == 0
    assert main(["show", str(synth_dataset), "--id", "nope-1"]) == 1
    assert "no sample with id 'nope-1'" in capsys.readouterr().err


def test_show_sheet_of_a_non_synthetic_sample(tmp_path, handmade_dataset):
    """A sample without synth meta (hand-made) still renders, with its tags."""
    from labkit.cli.show import find_sample, render_sheet

    sheet = render_sheet(find_sample(handmade_dataset, "s0002"), tile=64)
    assert sheet.size[0] == 5 * 64 + 36
    # The hand-made sample's verdict colours follow its tags: s0002 answers N, all red frames.
    px = np.asarray(sheet)
    assert tuple(px[34 - 2, 6 + 64 + 6 + 2]) == (190, 0, 0)


def test_weak_pseudo_labels_and_short_cot():
    """pseudo_label_accuracy < 1 imitates a weak annotator: about that share of answers is right,
    the CoT reaches the (possibly wrong) answer, the truth stays in meta; cot_style="short"
    gives one verdict per image."""
    from labkit.data import validate_sample

    cfg = SynthConfig(size=48, pseudo_label_accuracy=0.4)
    right = 0
    for index in range(60):
        s = render_sample(index, "pseudo_label", cfg)
        validate_sample(s)
        meta = json.loads(s["meta"])
        assert s["candidate_defects"] is None and s["dimension"] is None
        assert s["cot"].endswith(f"the answer is {s['answer']}.")
        right += s["answer"] == meta["truth"]["answer"]
        assert (s["answer"] == meta["truth"]["answer"]) == (meta["annotation"] == "weak-correct")
    assert 0.25 <= right / 60 <= 0.55
    oracle = render_sample(0, "pseudo_label", SynthConfig(size=48))
    assert oracle["candidate_defects"] is not None and "truth" not in json.loads(oracle["meta"])
    short = render_sample(0, "train", SynthConfig(size=48, cot_style="short"))
    assert short["cot"].count(":") == 4 and short["cot"].endswith(f"the answer is {short['answer']}.")


@pytest.mark.parametrize("size", [40, 48])
def test_every_defect_draws_at_the_smallest_sizes(size):
    """Tiny images (thin parts below a pixel) still draw every defect kind, alone and combined
    with a size-changing one, for every product kind; the candidate keeps the image's size."""
    for seed in range(8):
        rng = np.random.default_rng(seed)
        product = random_product(rng, ("box", "bottle", "blister", "tube")[seed % 4])
        scene = random_scene(rng)
        bg = render_background(scene, size)
        for kinds in DEFECT_KINDS.values():
            for kind in kinds:
                other = ("wrong_scale", "aspect", "quantity", "floating")[seed % 4]
                defects = [make_defect(kind, seed % 2, rng, product), make_defect(other, 1.0, rng, product)]
                img, _ = render_candidate(bg, scene, product, {"x": 0.5, "t": 0.6, "scale": 1.0}, defects)
                assert img.shape == (size, size, 3)


def test_show_finds_samples_across_row_groups(tmp_path, synth_dataset):
    """`find_sample` reads one row group: ids in every row group of a file are found, with their images."""
    import pyarrow.parquet as pq

    from labkit.cli.show import find_sample

    table = pq.read_table(synth_dataset / "train.parquet")
    (tmp_path / "ds").mkdir()
    pq.write_table(table, tmp_path / "ds" / "train.parquet", row_group_size=5)
    assert pq.ParquetFile(tmp_path / "ds" / "train.parquet").num_row_groups == 5
    for i in (0, 4, 5, 13, 23):
        row = find_sample(tmp_path / "ds", f"train-{i:06d}")
        assert row["id"] == f"train-{i:06d}"
        assert row["original"]["bytes"] == table.column("original")[i].as_py()["bytes"]


def test_text_corpus_covers_the_generated_texts():
    """text_corpus gives, per sample, its caption, full CoT and short CoT, identical to what
    render_sample writes for the same index and seed."""
    from labkit.synth import text_corpus

    texts = text_corpus(3, seed=0, size=48)
    assert len(texts) == 9
    sample = render_sample(1, "train", SynthConfig(size=48, seed=0))
    assert texts[3] == sample["caption"] and texts[4] == sample["cot"]
    assert texts[5].endswith(f"the answer is {sample['answer']}.")
