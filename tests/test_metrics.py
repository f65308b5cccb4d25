"""The paper's metric (labkit.metrics): parsing, correctness, random baseline, scoring."""
import math

import pytest

from labkit.metrics import canonical_answer, format_table, is_correct, parse_answer, random_baseline, score


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>A is fine.</think><answer>AC</answer>", "AC"),  # CoT form, canonical letters
        ("<think>x</think><answer>c, a</answer>", "AC"),  # lower case, comma, out of order -> sorted
        ("<think>x</think><answer> B D </answer>", "BD"),  # spaces inside the tag
        ("<answer>A</answer> then <answer>B</answer>", "B"),  # the last answer tag wins
        ("<think>..</think><answer>None</answer>", "N"),  # the word "none" means N
        ("<answer>n</answer>", "N"),  # lower-case n
        ("A", "A"),  # direct form: a bare letter
        ("a, b", "AB"),  # direct form with comma and lower case
        ("  BCD.  ", "BCD"),  # surrounding spaces and a trailing period
        ("none", "N"),  # direct form "none"
        ("AAB", "AB"),  # repeated letters collapse
        ("A and C", "AC"),  # "and" as a separator
    ],
)
def test_parse_answer_valid(text, expected):
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<answer>AN</answer>",  # N mixed with letters contradicts itself
        "<answer>AE</answer>",  # a letter outside A-D
        "<answer></answer>",  # an empty answer tag
        "<answer>   </answer>",  # a blank answer tag
        "The best one is clearly the second.",  # prose with no answer
        "",  # empty response
        "<think>A looks right",  # a CoT that never reached an answer
        "<think>x</think><answer>A",  # an answer tag that never closed
        "E",  # direct form outside A-D
        "<answer>AB</answer><answer>X</answer>",  # last tag wins even when it is invalid
    ],
)
def test_parse_answer_invalid_returns_none(text):
    assert parse_answer(text) is None


def test_parse_answer_none_input():
    # None (no response at all) is no answer, not a crash
    assert parse_answer(None) is None


@pytest.mark.parametrize(
    "pred, label, expected",
    [
        ("A", "AC", True),  # one option, inside the label
        ("AC", "AC", True),  # exact match
        ("AB", "AC", False),  # B is not acceptable
        ("N", "N", True),  # N is right only when the label is N
        ("N", "AC", False),  # N against letters is wrong
        ("A", "N", False),  # a letter against N is wrong
        (None, "AC", False),  # unparsed is always wrong
        (None, "N", False),  # unparsed is wrong even for N
        ("c", "ca", True),  # canonicalised on both sides
    ],
)
def test_is_correct(pred, label, expected):
    assert is_correct(pred, label) is expected


def test_random_baseline_paper_number():
    # mean label length 1.7136 over five choices -> 34.27 (paper, Section 5.1);
    # 10000 labels: 7136 of length 2 and 2864 of length 1 give mean exactly 1.7136
    labels = ["AB"] * 7136 + ["A"] * 2864
    assert round(random_baseline(labels), 2) == 34.27


def test_random_baseline_counts_n_as_length_one():
    # "N" counts as one choice: mean length of ["N", "ABC"] is 2 -> 40 %
    assert random_baseline(["N", "ABC"]) == pytest.approx(40.0)


def test_random_baseline_empty_is_nan():
    # no labels: no expectation, and no division error
    assert math.isnan(random_baseline([]))


def test_score_overall_per_dimension_and_unparsed():
    preds = ["A", "B", None, "N", "CD"]
    labels = ["AC", "AC", "B", "N", "ACD"]
    dims = ["physical_shadow", "physical_shadow", "normal", "normal", "placement_layout"]
    result = score(preds, labels, dims)
    # correct: A in AC yes; B in AC no; None no; N=N yes; CD in ACD yes -> 3/5
    assert result["overall"] == pytest.approx(60.0)
    assert result["n"] == 5 and result["unparsed"] == 1
    assert result["per_dimension"] == {"normal": 50.0, "physical_shadow": 50.0, "placement_layout": 100.0}
    # random baseline over the same samples: lengths 2,2,1,1,3 -> mean 1.8 -> 36 %
    assert result["random_baseline"] == pytest.approx(36.0)
    assert result["random_per_dimension"]["placement_layout"] == pytest.approx(60.0)


def test_score_rejects_length_mismatch():
    # mismatched inputs are a caller bug: say so instead of silently truncating
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        score(["A", "B"], ["A"])


def test_canonical_answer_rejects_bad_labels():
    # labels are validated: an invalid label is an error naming the value
    with pytest.raises(ValueError, match="'AX'"):
        canonical_answer("AX")
    assert canonical_answer("dcb") == "BCD"


def test_format_table_contains_numbers():
    table = format_table({"sft": score(["A"], ["AB"], ["normal"])})
    assert "sft" in table and "100.00" in table and "40.00" in table
