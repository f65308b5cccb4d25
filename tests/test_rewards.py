"""GRPO rewards (labkit.rewards): TRL's signature, built on the metric."""
import pytest

from labkit.rewards import REWARDS, accuracy_reward, dpa_reward, format_reward, get_rewards


def conv(text):
    # TRL's conversational completion: a list with the assistant message
    return [{"role": "assistant", "content": text}]


GOOD = "<think>A and C keep the product.</think><answer>AC</answer>"


@pytest.mark.parametrize(
    "completion, expected",
    [
        (GOOD, 1.0),  # the full format with a valid answer
        ("  " + GOOD + "\n", 1.0),  # surrounding whitespace is fine
        ("<answer>AC</answer>", 0.0),  # no think block
        ("<think>x</think>", 0.0),  # no answer block
        ("<think>x</think><answer>AX</answer>", 0.0),  # answer outside A-D: invalid
        ("<think>x</think><answer></answer>", 0.0),  # empty answer
        ("prefix <think>x</think><answer>A</answer>", 0.0),  # text before the think block
        ("<think>x</think><answer>A</answer> trailing", 0.0),  # text after the answer
        ("<think>a<think>b</think><answer>A</answer>", 0.0),  # nested think
        ("AC", 0.0),  # a direct answer has no format
    ],
)
def test_format_reward(completion, expected):
    assert format_reward([completion]) == [expected]
    assert format_reward([conv(completion)]) == [expected]  # conversational form too


def test_accuracy_reward_exact_match_only():
    comps = [GOOD, "<think>x</think><answer>A</answer>", "<think>x</think><answer>ACD</answer>", "garbage"]
    # exact AC -> 1; A is a subset but not exact -> 0; ACD has a wrong letter -> 0; unparsed -> 0
    assert accuracy_reward(comps, answer=["AC"] * 4) == [1.0, 0.0, 0.0, 0.0]


def test_dpa_reward_partial_credit():
    comps = ["<answer>A</answer>", "<answer>AC</answer>", "<answer>ACD</answer>", "<answer>N</answer>", "<answer>B</answer>"]
    labels = ["ACD", "ACD", "ACD", "N", "N"]
    # 1/3 of the label; 2/3; all of it; N matches N; a letter against N gets nothing
    assert dpa_reward(comps, answer=labels) == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 0.0])


def test_dpa_zero_when_any_wrong_letter():
    # naming one unacceptable candidate loses all credit, even if others are right
    assert dpa_reward(["<answer>AB</answer>"], answer=["ACD"]) == [0.0]
    # N against a non-empty label gets nothing
    assert dpa_reward(["<answer>N</answer>"], answer=["A"]) == [0.0]


def test_rewards_accept_extra_columns_and_conversational():
    # TRL passes other dataset columns and trainer state as keyword arguments
    out = REWARDS["dpa"]([conv("<think>t</think><answer>B</answer>")], answer=["BD"], id=["x"], trainer_state=None)
    assert out == [0.5]


def test_reward_needs_answer_column():
    # a dataset without the label column is a clear error, not a silent zero
    with pytest.raises(ValueError, match="answer"):
        accuracy_reward([GOOD])


def test_registry_and_weights():
    funcs, weights = get_rewards({"format": 1.0, "dpa": 0.5})
    assert funcs == [format_reward, dpa_reward] and weights == [1.0, 0.5]
    with pytest.raises(KeyError, match="unknown reward 'nope'"):
        get_rewards(["nope"])
