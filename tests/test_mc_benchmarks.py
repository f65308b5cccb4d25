"""Generalisation benchmarks: BLINK, MuirBench and RealWorldQA in their published schemas.

The fixtures are written here, in each benchmark's published layout and column types
(hub file names, `datasets.Image` cells, None gaps), then loaded, split, converted and
evaluated through the lab's code.
"""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from labkit.mc import sources as bmc
from labkit.mc import data as mc_data, metrics as mc_metrics, tasks as mc_tasks
from labkit.evaluate import evaluate_mc

COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "gray", "white", "black", "pink"]


def png(color: str, size: int = 32) -> dict:
    """An image cell as the hub stores it: encoded bytes and no path."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def write_parquet(rows: list[dict], features, path):
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def blink_features():
    from datasets import Features, Image as HFImage, List, Value

    return Features({
        "idx": Value("string"), "question": Value("string"), "sub_task": Value("string"),
        "image_1": HFImage(), "image_2": HFImage(), "image_3": HFImage(), "image_4": HFImage(),
        "choices": List(Value("string")), "answer": Value("string"), "prompt": Value("string"),
        "explanation": Value("string"),
    })


def blink_row(split, task, i, n_images, choices, answer):
    imgs = [png(COLORS[(i + k) % len(COLORS)]) for k in range(n_images)] + [None] * (4 - n_images)
    question = f"Which image is most similar to the first one? ({task} {i})"
    prompt = question + "\nSelect from the following choices.\n" + "\n".join(
        f"({chr(65 + j)}) {c}" for j, c in enumerate(choices))
    return {"idx": f"{split}_{task}_{i}", "question": question, "sub_task": task.replace("_", " "),
            "image_1": imgs[0], "image_2": imgs[1], "image_3": imgs[2], "image_4": imgs[3],
            "choices": choices, "answer": answer, "prompt": prompt, "explanation": ""}


def write_blink(root, bad_row: int | None = None):
    """Two subtask configs (val + test with hidden answers), hub layout CONFIG/split-*.parquet."""
    f = blink_features()
    art = [blink_row("val", "Art_Style", i, 3, ["the second image", "the third image"], ["(A)", "(B)"][i % 2])
           for i in range(4)]
    count = [blink_row("val", "Counting", i, 1, ["0", "1", "2", "3"], ["(A)", "(B)", "(C)", "(D)"][i % 4])
             for i in range(4)]
    if bad_row is not None:
        count[bad_row]["answer"] = "(F)"
    write_parquet(art, f, root / "Art_Style" / "val-00000-of-00001.parquet")
    write_parquet(count, f, root / "Counting" / "val-00000-of-00001.parquet")
    test = [blink_row("test", "Counting", i, 1, ["0", "1", "2", "3"], "hidden") for i in range(2)]
    write_parquet(test, f, root / "Counting" / "test-00000-of-00001.parquet")
    return root


def muir_features():
    from datasets import Features, Image as HFImage, List, Value

    return Features({
        "idx": Value("string"), "task": Value("string"), "image_relation": Value("string"),
        "image_type": Value("string"), "question": Value("string"), "options": List(Value("string")),
        "answer": Value("string"), "image_list": List(HFImage()), "counterpart_idx": Value("string"),
    })


def write_muirbench(root, bad_row: int | None = None):
    """MuirBench's data/test-*.parquet: image options, a 5-option item, counterpart pairs."""
    rows = []
    for i in range(8):
        task = ["Visual Retrieval", "Counting"][i % 2]
        if task == "Visual Retrieval":
            question = "Which image shows the same place as <image>?"
            options = ["<image>", "<image>", "<image>", "<image>", "None of the choices provided"]
            images = [png(COLORS[(i + k) % 10]) for k in range(5)]
            answer = "ABCDE"[i % 5]
        else:
            question = "<image> <image> How many images show a red object?"
            options = ["1", "2", "3"]
            images = [png("red"), png(COLORS[i % 10])]
            answer = "ABC"[i % 3]
        pair = {0: 2, 2: 0, 1: 3, 3: 1}.get(i)  # answerable/unanswerable counterparts share a task
        rows.append({"idx": str(i), "task": task, "image_relation": "Cropped/Zoomed", "image_type": "Photograph",
                     "question": question, "options": options, "answer": answer, "image_list": images,
                     "counterpart_idx": None if pair is None else str(pair)})
    if bad_row is not None:
        rows[bad_row]["image_list"] = rows[bad_row]["image_list"][:1]
    return write_parquet(rows, muir_features(), root / "data" / "test-00000-of-00001.parquet").parent.parent


def rwqa_features():
    from datasets import Features, Image as HFImage, Value

    return Features({"image": HFImage(), "question": Value("string"), "answer": Value("string")})


RWQA_INSTRUCTION = "Please answer directly with only the letter of the correct option and nothing else."


def write_realworldqa(root):
    """Two shards; letter answers, a word answer, and one free-form (open) question."""
    def mc(i, opts, answer):
        text = f"In which direction is the car {i} facing?\n" + "\n".join(
            f"{chr(65 + j)}. {o}" for j, o in enumerate(opts)) + "\n" + RWQA_INSTRUCTION
        return {"image": png(COLORS[i % 10], 40), "question": text, "answer": answer}

    shard0 = [mc(0, ["Left", "Straight", "Right"], "C"), mc(1, ["Left", "Right"], "A"),
              {"image": png("gray", 40), "question": "How many pedestrians are there?\nPlease answer directly with a "
               "single word or number.", "answer": "3"}]
    shard1 = [mc(3, ["Yes", "No"], "No"), mc(4, ["Left", "Straight", "Right", "Behind"], "B"),
              mc(5, ["Left", "Right"], "B")]
    write_parquet(shard0, rwqa_features(), root / "data" / "test-00000-of-00002.parquet")
    write_parquet(shard1, rwqa_features(), root / "data" / "test-00001-of-00002.parquet")
    return root


# ----------------------------------------------------------------------------- loaders

def test_blink_loads_val_with_gaps_and_normalised_letters(tmp_path):
    # Published BLINK val: "(A)" answers become letters; None image gaps are dropped; the
    # sub_task column is the category; both config folders are read.
    load = bmc.load_benchmark("blink", write_blink(tmp_path / "BLINK"))
    assert load.split == "val" and len(load.items) == 8
    by_id = {it.id: it for it in load.items}
    art = by_id["val_Art_Style_1"]
    assert art.answer == "B" and len(art.images) == 3 and art.options == ["the second image", "the third image"]
    cnt = by_id["val_Counting_2"]
    assert cnt.answer == "C" and len(cnt.images) == 1 and cnt.category == "Counting"
    assert sorted({it.category for it in load.items}) == ["Art Style", "Counting"]
    # Selecting one subtask reads only that config.
    only = bmc.load_benchmark("blink", tmp_path / "BLINK", configs=["Counting"])
    assert {it.category for it in only.items} == {"Counting"} and len(only.items) == 4


def test_blink_hidden_test_answers_are_refused(tmp_path):
    # BLINK test answers are "hidden": loading them for scoring/training is refused clearly;
    # prediction-only loading keeps them with answer None, and scoring those is refused too.
    root = write_blink(tmp_path / "BLINK")
    with pytest.raises(bmc.HiddenAnswersError, match="hidden.*val"):
        bmc.load_benchmark("blink", root, split="test")
    load = bmc.load_benchmark("blink", root, split="test", require_answers=False)
    assert [it.answer for it in load.items] == [None, None]
    with pytest.raises(ValueError, match="hidden"):
        mc_metrics.score_mc(["A", "B"], [it.answer for it in load.items], [4, 4])


def test_malformed_rows_are_reported_with_file_and_index(tmp_path):
    # An out-of-range answer (BLINK) and too few images for the placeholders (MuirBench)
    # name the file, the row index within it and the idx.
    with pytest.raises(bmc.MCRowError) as err:
        bmc.load_benchmark("blink", write_blink(tmp_path / "BLINK", bad_row=2))
    assert err.value.row == 2 and err.value.idx == "val_Counting_2"
    assert "Counting/val-00000-of-00001.parquet row 2" in str(err.value) and "(F)" in str(err.value)
    with pytest.raises(bmc.MCRowError, match=r"row 4 \(idx '4'\).*5 <image> placeholders.*1 images"):
        bmc.load_benchmark("muirbench", write_muirbench(tmp_path / "MUIR", bad_row=4))
    # A file that is not the benchmark's schema names the missing columns.
    write_realworldqa(tmp_path / "RWQA")
    with pytest.raises(ValueError, match="missing column.*choices"):
        bmc.load_benchmark("blink", tmp_path / "RWQA", split="test")


def test_corrupt_image_is_a_row_error(tmp_path):
    # Undecodable image bytes are reported for that row, not as a crash later in training.
    rows = [{"image": png("red"), "question": "Q?\nA. x\nB. y", "answer": "A"},
            {"image": {"bytes": b"not an image", "path": None}, "question": "Q?\nA. x\nB. y", "answer": "B"}]
    write_parquet(rows, rwqa_features(), tmp_path / "R" / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(bmc.MCRowError, match=r"row 1 .*unreadable"):
        bmc.load_benchmark("realworldqa", tmp_path / "R")


def test_muirbench_placeholders_options_and_letters(tmp_path):
    # <image> placeholders are numbered in order (question first, then options); answers
    # beyond D are kept (5 options); image counts match image_list.
    load = bmc.load_benchmark("muirbench", write_muirbench(tmp_path / "MUIR"))
    assert len(load.items) == 8
    vr = {it.id: it for it in load.items}["4"]
    assert vr.question == "Which image shows the same place as [image 1]?"
    assert vr.options == ["[image 2]", "[image 3]", "[image 4]", "[image 5]", "None of the choices provided"]
    assert vr.answer == "E" and len(vr.images) == 5 and vr.category == "Visual Retrieval"
    cnt = {it.id: it for it in load.items}["1"]
    assert cnt.question.startswith("[image 1] [image 2] How many") and cnt.meta["counterpart_idx"] == "3"


def test_realworldqa_options_from_text_and_open_questions(tmp_path):
    # Options are parsed out of the question text; a word answer maps to its option's letter;
    # the free-form question is skipped and counted (or refused with open_questions="error").
    load = bmc.load_benchmark("realworldqa", write_realworldqa(tmp_path / "RWQA"))
    assert [it.answer for it in load.items] == ["C", "A", "B", "B", "B"]
    first = load.items[0]
    assert first.question == "In which direction is the car 0 facing?"
    assert first.options == ["Left", "Straight", "Right"] and first.meta["instruction"] == RWQA_INSTRUCTION
    assert len(load.skipped) == 1 and "row 2" in load.skipped[0]
    # The hub's converted layout (default/test/0000.parquet) reads the same.
    import shutil

    conv = tmp_path / "conv" / "default" / "test"
    conv.mkdir(parents=True)
    for i, f in enumerate(sorted((tmp_path / "RWQA" / "data").glob("*.parquet"))):
        shutil.copy(f, conv / f"{i:04d}.parquet")
    assert [it.answer for it in bmc.load_benchmark("realworldqa", tmp_path / "conv").items] == ["C", "A", "B", "B", "B"]
    with pytest.raises(bmc.MCRowError, match="free-form"):
        bmc.load_benchmark("realworldqa", tmp_path / "RWQA", open_questions="error")


# ----------------------------------------------------------------------------- split

def test_split_is_deterministic_one_to_one_and_keeps_counterparts(tmp_path):
    # Same seed -> same halves whatever the input order; another seed -> another split;
    # halves are 1:1 per category; MuirBench counterparts stay on one side.
    items = bmc.load_benchmark("muirbench", write_muirbench(tmp_path / "MUIR")).items
    train, test = mc_data.split_items(items, seed=0)
    again = mc_data.split_items(list(reversed(items)), seed=0)
    assert [i.id for i in train] == [i.id for i in again[0]] and [i.id for i in test] == [i.id for i in again[1]]
    assert len(train) == len(test) == 4
    for cat in ("Visual Retrieval", "Counting"):
        assert sum(i.category == cat for i in train) == sum(i.category == cat for i in test) == 2
    side = {i.id: "train" for i in train} | {i.id: "test" for i in test}
    assert side["0"] == side["2"] and side["1"] == side["3"]
    blink = bmc.load_benchmark("blink", write_blink(tmp_path / "BLINK")).items
    splits = {tuple(i.id for i in mc_data.split_items(blink, seed=s)[1]) for s in range(6)}
    assert len(splits) > 1 and all(len(t) == 4 for t in splits)


def test_prepare_writes_split_and_manifest(tmp_path):
    # mc-prepare: train/test Parquet in the MC schema + dataset.json with kind "mc"; the test
    # split round-trips (answers, options, image count).
    out = tmp_path / "prep"
    manifest = mc_data.prepare("realworldqa", write_realworldqa(tmp_path / "RWQA"), out, seed=0)
    assert manifest["splits"] == {"train": 2, "test": 3} and manifest["skipped"] == 1
    assert mc_data.is_mc_dataset(out) and not mc_data.is_mc_dataset(tmp_path)
    test = mc_data.load_mc(out, "test")
    assert sorted(test["answer"]) == sorted(
        it.answer for it in mc_data.split_items(bmc.load_benchmark("realworldqa", tmp_path / "RWQA").items, 0)[1])
    assert all(len(r["images"]) == 1 and r["n_options"] == len(r["options"]) for r in test)
    # all-test keeps everything as test and removes a stale train split.
    manifest = mc_data.prepare("realworldqa", tmp_path / "RWQA", out, protocol="all-test")
    assert manifest["splits"] == {"test": 5} and not (out / "train.parquet").exists()
    # A folder holding something else (here a screening dataset) is never overwritten.
    screening = tmp_path / "screening"
    screening.mkdir()
    (screening / "train.parquet").write_bytes(b"precious")
    with pytest.raises(ValueError, match="not a prepared MC folder"):
        mc_data.prepare("realworldqa", tmp_path / "RWQA", screening)
    assert (screening / "train.parquet").read_bytes() == b"precious"


def test_cli_prepare_and_errors(tmp_path, capsys):
    # The CLI prints sizes and skipped rows; bad input is a one-line error, exit code 1.
    from labkit.cli import main

    root = write_blink(tmp_path / "BLINK")
    assert main(["mc-prepare", "--benchmark", "blink", "--source", str(root), "--out", str(tmp_path / "b")]) == 0
    assert "train 4, test 4" in capsys.readouterr().out
    # `labkit info` recognises a prepared MC folder (kind "mc") and summarises it.
    assert main(["info", str(tmp_path / "b")]) == 0
    info = capsys.readouterr().out
    assert "MC dataset" in info and "blink (val split, protocol split, seed 0" in info and "Counting=2" in info
    assert main(["mc-prepare", "--benchmark", "blink", "--source", str(root), "--split", "test",
                 "--out", str(tmp_path / "c")]) == 1
    assert "answers are hidden" in capsys.readouterr().err
    assert main(["mc-prepare", "--benchmark", "muirbench", "--source", str(tmp_path / "nothing"),
                 "--out", str(tmp_path / "d")]) == 1
    assert "neither a local file/folder nor a hub id" in capsys.readouterr().err


# ----------------------------------------------------------------------------- metric, prompt, rows

def test_letter_parse_and_scores():
    # Letters in the item's range only; one letter only; micro vs macro accuracy; the random
    # baseline is the mean of 1/n_options.
    p = mc_metrics.parse_mc_answer
    assert p("<think>x</think><answer>E</answer>", 5) == "E" and p("<think>x</think><answer>E</answer>", 4) is None
    assert p("(b) the second image", 2) == "B" and p("A, C", 4) is None and p("<think>no answer", 4) is None
    res = mc_metrics.score_mc(["A", "B", "A", None], ["A", "A", "A", "C"], [2, 2, 4, 4], ["x", "x", "y", "y"])
    assert res["overall"] == 50.0 and res["macro"] == 50.0 and res["unparsed"] == 1
    # RealWorldQA has no categories: no per-category split, macro = micro.
    flat = mc_tasks.score_predictions([{"prediction": "A", "answer": "A", "n_options": 3, "dimension": ""},
                                       {"prediction": "B", "answer": "C", "n_options": 3, "dimension": ""}])
    assert flat["per_dimension"] == {} and flat["macro"] == flat["overall"] == 50.0
    res = mc_metrics.score_mc(["A", "B", "A"], ["A", "A", "A"], [2, 2, 4], ["x", "x", "y"])
    assert round(res["overall"], 2) == 66.67 and res["macro"] == 75.0
    assert res["random_baseline"] == pytest.approx(100 * (0.5 + 0.5 + 0.25) / 3)


def test_mc_accuracy_agrees_with_lab_metric_on_single_letters():
    # For options A-D and single-letter answers, the MC verdict equals labkit.metrics.is_correct.
    from labkit.metrics import is_correct, parse_answer

    replies = ["<think>t</think><answer>A</answer>", "<think>t</think><answer>b</answer>", "C", "D.", "nothing", "AB"]
    for gold in "ABCD":
        for reply in replies:
            mc = mc_metrics.parse_mc_answer(reply, 4)
            lab = parse_answer(reply)
            assert (mc == gold) == (lab is not None and len(lab) == 1 and is_correct(lab, gold)), (reply, gold)


def test_rewards_registered_and_scored():
    # mc_format / mc_accuracy are in the reward registry and read n_options per row.
    from labkit.rewards import REWARDS

    comps = ["<think>x</think><answer>E</answer>", "<think>x</think><answer>B</answer>", "E"]
    assert REWARDS["mc_format"](comps, n_options=[5, 5, 5]) == [1.0, 1.0, 0.0]
    assert REWARDS["mc_accuracy"](comps, answer=["E", "E", "E"], n_options=[5, 5, 5]) == [1.0, 0.0, 1.0]
    assert REWARDS["mc_accuracy"](comps[:1], answer=["E"], n_options=[4]) == [0.0]


def test_prompt_and_rows(tmp_path):
    # The prompt lists images and lettered options; SFT targets carry the answer tag; GRPO rows
    # carry one image placeholder per image and the n_options column the rewards read.
    from labkit.conversions import Conversion

    out = tmp_path / "prep"
    mc_data.prepare("muirbench", write_muirbench(tmp_path / "MUIR"), out, seed=0)
    ds = mc_data.load_mc(out, "train")
    text = mc_tasks.mc_prompt("Which?", ["x", "y", "z"], "cot", 2)
    assert "image 1, image 2" in text and "C. z" in text and "(A-C)" in text and "<answer>" in text
    sft = mc_tasks.to_sft_dataset(ds, Conversion(form="cot", image_size=28))
    grpo = mc_tasks.to_grpo_dataset(ds, Conversion(form="cot"))
    for item, s, g in zip(ds, sft, grpo):
        target = s["messages"][1]["content"][0]["text"]
        assert target.endswith(f"<answer>{item['answer']}</answer>")
        assert mc_metrics.parse_mc_answer(target, item["n_options"]) == item["answer"]
        assert len(s["images"]) == len(item["images"]) and s["images"][0].size == (28, 28)
        n_placeholders = sum(c["type"] == "image" for c in g["prompt"][0]["content"])
        assert n_placeholders == len(g["images"]) == len(item["images"])
        assert g["answer"] == item["answer"] and g["n_options"] == len(item["options"])
    # The SFT target earns full reward (the format GRPO needs is what SFT teaches).
    targets = [s["messages"][1]["content"][0]["text"] for s in sft]
    assert mc_metrics.mc_format_reward(targets, n_options=ds["n_options"]) == [1.0] * len(ds)


# ----------------------------------------------------------------------------- recipes, model

def test_generalise_recipes_and_set_load(tmp_path):
    # Every mc recipe validates (mc rewards are registered; no DPA anywhere); the set
    # lists base -> sft -> mine -> grpo -> hcm-grpo; the small recipes build TRL rows from an MC folder.
    import glob

    from labkit.ablate import load_recipe_set
    from labkit.recipes import load_recipe

    files = sorted(glob.glob("recipes/mc/*/*.yaml"))
    assert len(files) == 12
    for f in files:
        r = load_recipe(f)  # also checks the training keys against TRL's config classes
        if r.stage == "grpo":
            assert r.rewards == {"mc_format": 1.0, "mc_accuracy": 1.0}, f
            assert bool(r.hcm) == (r.arm == "hcm-grpo") and (not r.hcm or r.hcm["late_mix"] == "all+hard"), f
        if "small" not in f:
            # GPU variants carry Table 2: G=4, beta 0.04, top_k 3, top_p 0.8, T=1, batch 8; 5 epochs
            # (HCM: 3 + 2 as one trainer epoch); SFT freezes ViT + aligner; the paper's model size.
            t = r.training
            assert t["per_device_train_batch_size"] == 8 and t["bf16"] is True, f
            size = "1B" if "muirbench" in f else "2B"
            assert r.model == f"InternVL3-{size}-hf" if r.stage == "sft" else r.model.endswith("/sft/final"), f
            if r.stage == "grpo":
                assert (t["num_generations"], t["beta"], t["top_k"], t["top_p"], t["temperature"]) == (4, 0.04, 3, 0.8, 1.0)
                assert (r.hcm["switch_epoch"], r.hcm["late_epochs"]) == (3, 2) if r.hcm else t["num_train_epochs"] == 5
            else:
                assert t["num_train_epochs"] == 5 and r.freeze.vision and r.freeze.projector and not r.freeze.language
    rs = load_recipe_set("mc")
    assert [a.name for a in rs.arms] == ["base", "sft", "mine", "grpo", "hcm-grpo"]
    data = tmp_path / "run" / "data"
    mc_data.prepare("muirbench", write_muirbench(tmp_path / "MUIR"), data, seed=0)
    overrides = {"run_dir": str(tmp_path / "run"), "data": str(data)}
    sft_rows, info = mc_tasks.build_mc_sft_dataset(load_recipe("recipes/mc/small/sft.yaml", overrides))
    assert info["rows"] == len(sft_rows) == 4 and sft_rows[0]["images"][0].size == (56, 56)
    grpo_rows = mc_tasks.build_mc_grpo_dataset(load_recipe("recipes/mc/small/grpo.yaml", overrides))
    assert sorted(grpo_rows["id"]) == sorted(mc_data.load_mc(data, "train")["id"])
    # Screening rewards on MC data are refused (they cannot parse E, or one-of-many letters).
    screening = load_recipe("recipes/mc/small/grpo.yaml", {**overrides, "rewards": {"format": 1.0, "accuracy": 1.0}})
    with pytest.raises(ValueError, match="mc_format and mc_accuracy"):
        mc_tasks.build_mc_grpo_dataset(screening)


def test_evaluate_with_tiny_model_is_scored_and_resumable(tmp_path, tiny_internvl, capsys):
    # A tiny InternVL answers the BLINK test half through the lab's batched generation; the
    # result is score_mc over predictions.jsonl (micro, macro, per subtask); a rerun resumes.
    out = tmp_path / "prep"
    mc_data.prepare("blink", write_blink(tmp_path / "BLINK"), out, seed=0)
    run = tmp_path / "eval"
    res = evaluate_mc(str(tiny_internvl), out, "test", image_size=28, max_new_tokens=8, batch_size=4,
                      out_dir=run, progress=False)
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert res["n"] == len(rows) == 4 and res["generated"] == 4
    assert set(res["per_dimension"]) == {"Art Style", "Counting"} and res["n_per_dimension"] == {"Art Style": 2, "Counting": 2}
    assert res["overall"] == pytest.approx(100 * sum(r["correct"] for r in rows) / 4)
    assert res["macro"] == pytest.approx(sum(res["per_dimension"].values()) / 2)
    assert res["random_baseline"] == pytest.approx(100 * (0.5 + 0.25) / 2)
    for r in rows:
        assert r["prediction"] == mc_metrics.parse_mc_answer(r["response"], r["n_options"])
    again = evaluate_mc(str(tiny_internvl), out, "test", image_size=28, max_new_tokens=8, batch_size=4,
                        out_dir=run, progress=False)
    assert again["generated"] == 0 and again["resumed"] == 4 and again["overall"] == res["overall"]
    with pytest.raises(ValueError, match="other settings"):
        evaluate_mc(str(tiny_internvl), out, "test", image_size=28, max_new_tokens=9, out_dir=run, progress=False)
    # `labkit mc-evaluate --predictions` rescores the file: same micro and macro numbers.
    from labkit.cli import main

    assert main(["mc-evaluate", "--predictions", str(run / "predictions.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert f"micro accuracy {res['overall']:.2f}" in printed and f"(over 2 categories) {res['macro']:.2f}" in printed


def test_datasets_reader_matches_parquet_reader(tmp_path):
    # The route hub users take (datasets.load_dataset: decoded PIL images) gives the same items
    # as the offline Parquet route; an unreachable hub id is a clear error naming the fix.
    root = write_muirbench(tmp_path / "MUIR")
    direct = bmc.load_benchmark("muirbench", root)
    via = bmc.load_benchmark("muirbench", root, reader="datasets")
    key = [(it.id, it.question, it.options, it.answer, it.category, len(it.images)) for it in direct.items]
    assert key == [(it.id, it.question, it.options, it.answer, it.category, len(it.images)) for it in via.items]
    assert isinstance(via.items[0].images[0], Image.Image)
    with pytest.raises(FileNotFoundError, match="Offline\\? Download the Parquet files"):
        bmc.load_benchmark("muirbench", "no-such-owner/no-such-dataset")



@pytest.mark.slow
def test_generalise_set_runs_in_small_mode(tmp_path, tiny_internvl):
    # `labkit ablate --recipe-set mc` on the MuirBench fixture: base -> SFT -> mining ->
    # GRPO -> HCM-GRPO train and are scored on the test half (micro + per task), and the HCM arm
    # replays the mined hard cases. The tiny InternVL stands in for the set's small base model
    # (same architecture; the set builds the small one when {run_dir}/base-model is missing).
    import shutil

    from labkit.ablate import run_ablation

    out = tmp_path / "gen"
    shutil.copytree(tiny_internvl, out / "base-model")
    mc_data.prepare("muirbench", write_muirbench(tmp_path / "MUIR"), out / "data", seed=0)
    res = run_ablation("mc", out, progress=False, evaluation={"max_new_tokens": 32})
    assert list(res["arms"]) == ["base", "sft", "grpo", "hcm-grpo"]
    for name, arm in res["arms"].items():
        assert arm["n"] == 4 and set(arm["per_dimension"]) == {"Counting", "Visual Retrieval"}, name
        assert 0.0 <= arm["overall"] <= 100.0 and arm["random_baseline"] == pytest.approx(100 * (1 / 5 + 1 / 3) / 2)
    assert res["mining"]["n"] == 4 and res["mining"]["hard"] + res["mining"]["easy"] == 4
    epochs = [json.loads(x) for x in (out / "hcm-grpo" / "hcm_epochs.jsonl").read_text().splitlines()]
    assert len(epochs) == 2


def test_synthetic_stand_ins_load_as_published(tmp_path):
    # labkit.mc.synth writes each benchmark in its published layout; the loaders read them like
    # the real ones (hidden BLINK test answers refused, RealWorldQA free-form rows skipped,
    # MuirBench's fifth option used) and the answers are balanced enough to be learnable.
    from collections import Counter

    from labkit.mc.synth import write_synthetic

    rwqa = bmc.load_benchmark("realworldqa", write_synthetic("realworldqa", tmp_path / "r", n=30, seed=1))
    assert len(rwqa.items) + len(rwqa.skipped) == 30 and rwqa.skipped
    assert all(it.options[ord(it.answer) - 65].lower() in mc_synth_colours() for it in rwqa.items)
    blink_root = write_synthetic("blink", tmp_path / "b", n=20, seed=1)
    blink = bmc.load_benchmark("blink", blink_root)
    assert Counter(it.category for it in blink.items) == {"Counting": 10, "Visual Similarity": 10}
    with pytest.raises(bmc.HiddenAnswersError):
        bmc.load_benchmark("blink", blink_root, split="test")
    muir = bmc.load_benchmark("muirbench", write_synthetic("muirbench", tmp_path / "m", n=20, seed=1))
    letters = Counter(it.answer for it in muir.items if it.category == "Visual Retrieval")
    assert letters["E"] >= 4 and sum(letters.values()) >= 8
    assert write_synthetic("muirbench", tmp_path / "m2", n=20, seed=1) and \
        (tmp_path / "m2" / "data" / "test-00000-of-00001.parquet").read_bytes() == \
        (tmp_path / "m" / "data" / "test-00000-of-00001.parquet").read_bytes()


def mc_synth_colours():
    from labkit.mc.synth import COLOURS

    return set(COLOURS)


@pytest.mark.slow
def test_trl_trains_on_mc_rows(tmp_path, tiny_internvl):
    # The MC rows are what TRL's trainers take as they are: one SFT step (assistant-only loss) and
    # one GRPO step with the mc rewards, on MuirBench items mixing 2 and 5 images per prompt.
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from labkit.conversions import Conversion
    from labkit.models import load
    from labkit.rewards import REWARDS

    out = tmp_path / "prep"
    mc_data.prepare("muirbench", write_muirbench(tmp_path / "MUIR"), out, seed=0)
    ds = mc_data.load_mc(out, "train")
    assert sorted(set(ds["n_options"])) == [3, 5]  # both tasks: 2-image and 5-image prompts
    conv = Conversion(form="cot", image_size=28)
    common = dict(use_cpu=True, bf16=False, report_to="none", max_steps=1, gradient_checkpointing=False,
                  dataloader_num_workers=0, save_strategy="no", learning_rate=1e-3)
    model, processor = load(tiny_internvl)
    sft = SFTTrainer(model=model, processing_class=processor, train_dataset=mc_tasks.to_sft_dataset(ds, conv),
                     args=SFTConfig(output_dir=str(tmp_path / "sft"), per_device_train_batch_size=4,
                                    assistant_only_loss=True, max_length=None, **common))
    loss = sft.train().training_loss
    assert loss > 0 and loss == loss  # a finite, non-zero cross-entropy on the targets
    grpo = GRPOTrainer(model=model, processing_class=processor, train_dataset=mc_tasks.to_grpo_dataset(ds, conv),
                       reward_funcs=[REWARDS["mc_format"], REWARDS["mc_accuracy"]],
                       args=GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=4, num_generations=2,
                                       max_completion_length=8, beta=0.0, logging_steps=1, **common))
    grpo.train()
    logged = [h for h in grpo.state.log_history if "rewards/mc_accuracy_reward/mean" in h]
    assert logged and 0.0 <= logged[0]["rewards/mc_accuracy_reward/mean"] <= 1.0
