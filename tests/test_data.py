"""The dataset schema (labkit.data): validation errors, Parquet round trip, conversions."""
import io
import json

import pytest
from PIL import Image

from conftest import make_sample, solid
from labkit.conversions import Conversion, convert, make_grid
from labkit.data import SampleError, dataset_info, load_split, save_split, validate_sample


def test_parquet_round_trip_keeps_pixels_and_fields(tmp_path):
    # images survive save/load pixel for pixel; labels and meta come back unchanged
    orig = Image.new("RGB", (40, 30), (12, 34, 56))
    orig.putpixel((3, 4), (255, 0, 0))
    sample = make_sample(0, "BD", original=orig, caption="Original: a box", cot="A is warped.")
    save_split([sample], tmp_path, "train")
    ds = load_split(tmp_path, "train")
    row = ds[0]
    assert row["id"] == "s0000" and row["answer"] == "BD" and row["dimension"] == "physical_shadow"
    assert row["original"].size == (40, 30) and row["original"].getpixel((3, 4)) == (255, 0, 0)
    assert [c.getpixel((0, 0)) for c in row["candidates"]] == [(255, 0, 0), (0, 0, 255), (0, 128, 0), (128, 128, 128)]
    assert row["candidate_defects"] == [["physical_shadow"], [], ["physical_shadow"], []]
    assert json.loads(row["meta"]) == {"i": 0} and row["cot"] == "A is warped."
    assert json.loads((tmp_path / "dataset.json").read_text())["splits"] == {"train": 1}


def test_answer_is_canonicalised_on_save(tmp_path):
    # "ca" is stored as the canonical "AC"
    save_split([make_sample(0, "AC", answer="ca")], tmp_path, "train")
    assert load_split(tmp_path, "train")[0]["answer"] == "AC"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(candidates=[solid("red")] * 3), "expected exactly 4 candidates.*got 3"),  # too few candidates
        (dict(candidates=[solid("red")] * 5), "expected exactly 4 candidates.*got 5"),  # too many
        (dict(answer="AB"), "inconsistent with candidate_defects"),  # answer disagrees with defects
        (dict(answer="AX"), "invalid answer 'AX'"),  # malformed answer
        (dict(dimension="blurry"), "unknown dimension 'blurry'"),  # unknown dimension
        (dict(split="validation"), "unknown split 'validation'"),  # unknown split
        (dict(candidates=[b"not an image"] + [solid("red")] * 3), "candidate A is unreadable"),  # corrupt bytes
        (dict(original=Image.new("RGB", (4, 4))), "original image is too small"),  # wrong-sized image
        (dict(answer=None), "needs an answer"),  # a labelled split without a label
        (dict(meta="{broken"), "meta is not valid JSON"),  # corrupt meta
    ],
)
def test_validation_errors_name_sample_and_problem(change, message):
    sample = make_sample(7, "AC", **change)
    with pytest.raises(SampleError, match=message) as info:
        validate_sample(sample)
    assert "s0007" in str(info.value)  # the error names the sample


def test_truncated_png_is_unreadable():
    # a PNG cut in half is reported as unreadable, not decoded into garbage
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, format="PNG")
    with pytest.raises(SampleError, match="candidate B is unreadable"):
        validate_sample(make_sample(1, "AC", candidates=[solid("red"), buf.getvalue()[:40], solid("red"), solid("red")]))


def test_unlabelled_exploration_sample_is_valid():
    # exploration data has no answer, dimension or defects
    s = make_sample(2, "AC", split="exploration", answer=None, dimension=None, candidate_defects=None)
    assert validate_sample(s)["answer"] is None


def test_load_validates_and_names_the_bad_sample(tmp_path):
    # a file edited outside the lab (answer no longer matching defects) fails on load with its id
    save_split([make_sample(0, "AC"), make_sample(1, "B")], tmp_path, "train")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    table = pq.read_table(path)
    answers = table.column("answer").to_pylist()
    answers[1] = "D"
    table = table.set_column(table.schema.get_field_index("answer"), "answer", pa.array(answers))
    pq.write_table(table, path)
    with pytest.raises(SampleError, match="s0001.*inconsistent"):
        load_split(tmp_path, "train")


def test_save_refuses_wrong_split_and_duplicates(tmp_path):
    with pytest.raises(SampleError, match="belongs to split 'test'"):
        save_split([make_sample(0, "A", split="test")], tmp_path, "train")
    with pytest.raises(SampleError, match="duplicate id"):
        save_split([make_sample(0, "A"), make_sample(0, "A")], tmp_path, "train")
    assert not (tmp_path / "train.parquet").exists()  # nothing half-written


def test_missing_split_error_lists_what_exists(handmade_dataset):
    with pytest.raises(FileNotFoundError, match="no split 'pseudo_label'.*train, test"):
        load_split(handmade_dataset, "pseudo_label")


def test_dataset_info(handmade_dataset):
    info = dataset_info(handmade_dataset)
    # train answers AC, B, N, ABCD -> lengths 2,1,1,4 -> mean 2.0 -> random 40 %
    assert info["train"]["n"] == 4 and info["train"]["mean_answer_length"] == pytest.approx(2.0)
    assert info["train"]["random_baseline"] == pytest.approx(40.0)
    assert info["test"]["dimensions"]["normal"] == 1 and info["train"]["none_answers"] == 1


@pytest.mark.parametrize("layout, n_images", [("separate", 5), ("grid", 2)])
@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_conversions_placeholders_match_images(handmade_dataset, layout, n_images, kind):
    ds = load_split(handmade_dataset, "train")
    rows = convert(ds, kind, Conversion(layout=layout))
    for row in rows:
        user = (row["messages"] if kind == "sft" else row["prompt"])[0]
        placeholders = sum(1 for part in user["content"] if part["type"] == "image")
        assert placeholders == len(row["images"]) == n_images
    if kind == "sft":
        # the target is the CoT format with the canonical answer
        assert rows[0]["messages"][1]["content"][0]["text"].endswith("<answer>AC</answer>")
    else:
        assert rows["answer"] == ["AC", "B", "N", "ABCD"]


def test_direct_form_target_is_bare_answer(handmade_dataset):
    ds = load_split(handmade_dataset, "train")
    rows = convert(ds, "sft", Conversion(form="direct"))
    assert rows[2]["messages"][1]["content"][0]["text"] == "N"


def test_grid_tiles_in_order():
    # A top-left, B top-right, C bottom-left, D bottom-right; letters drawn in the tile corner
    cands = [solid(c, 40) for c in ("red", "blue", "green", "gray")]
    grid = make_grid(cands)
    assert grid.size == (80, 80)
    assert grid.getpixel((30, 30)) == (255, 0, 0) and grid.getpixel((70, 30)) == (0, 0, 255)
    assert grid.getpixel((30, 70)) == (0, 128, 0) and grid.getpixel((70, 70)) == (128, 128, 128)
    assert grid.getpixel((1, 1)) != (255, 0, 0)  # the label box covers the corner


def test_image_size_resizes_everything(handmade_dataset):
    ds = load_split(handmade_dataset, "train")
    row = convert(ds.select([0]), "grpo", Conversion(layout="grid", image_size=24))[0]
    assert [im.size for im in row["images"]] == [(24, 24), (24, 24)]


def test_eval_variant_target_names_one_acceptable_letter(handmade_dataset):
    # the paper's evaluation prompt asks for ONE letter: the SFT target is one acceptable letter
    # (or N), stable for a sample id, and not always the first acceptable letter
    from labkit.conversions import single_answer

    ds = load_split(handmade_dataset, "train")
    rows = convert(ds, "sft", Conversion(form="direct", variant="eval"))
    targets = [r["messages"][1]["content"][0]["text"] for r in rows]
    for target, answer in zip(targets, ds["answer"]):
        assert len(target) == 1 and target in answer  # AC -> A or C; N -> N; ABCD -> one of them
    assert single_answer("N", "x") == "N" and single_answer("B", "x") == "B"
    picks = {single_answer("ABCD", f"id{i}") for i in range(40)}
    assert picks == set("ABCD")  # all four positions are used across ids
    assert single_answer("ABCD", "id7") == single_answer("ABCD", "id7")  # deterministic
