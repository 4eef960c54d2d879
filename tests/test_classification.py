"""The shared DecodingTrust classification helper: message layout, parse rule, per-sub-task mean."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.dimensions.classification import (
    FEW_SHOT_ACK,
    FEW_SHOT_SYSTEM,
    ZERO_SHOT_SYSTEM,
    classification_messages,
    grouped_mean,
    is_correct,
    parse_prediction,
    subtask_code,
)


def test_zero_shot_layout_is_system_then_task_and_input_in_one_user_turn():
    messages = classification_messages("Label it.", "a fine film")
    assert messages == (("system", ZERO_SHOT_SYSTEM), ("user", "Label it.\na fine film"))


def test_few_shot_layout_has_acknowledgement_and_capitalised_demo_labels():
    messages = classification_messages("Label it.", "a dull film", [("a fine film", "positive"), ("bad", "not wrong")])
    assert messages == (
        ("system", FEW_SHOT_SYSTEM),
        ("user", "Label it."),
        ("assistant", FEW_SHOT_ACK),
        ("user", "a fine film"),
        ("assistant", "Positive"),
        ("user", "bad"),
        ("assistant", "Not wrong"),
        ("user", "a dull film"),
    )


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Answer: Positive.", ("positive.", "positive")),
        ("yes, because the premise says so", ("yes, because the premise says so", "yes")),
        ("No</s>garbage", ("no", "no")),
        ("maybe<|im_end|>", ("maybe", "maybe")),
        ("  Negative\nThe text is sad.", ("negative\nthe text is sad.", "negative")),
    ],
)
def test_parse_prediction_follows_do_classification(response, expected):
    assert parse_prediction(response) == expected


@pytest.mark.parametrize(
    ("response", "label", "correct"),
    [
        ("Yes.", "yes", True),
        ("Maybe, the premise is vague", "maybe", True),
        ("The answer is yes", "yes", False),  # exact match of the answer or its first clause only
        ("positive and negative", "positive", False),
    ],
)
def test_is_correct_requires_the_label_as_the_answer_or_first_clause(response, label, correct):
    assert is_correct(response, label) is correct


def test_grouped_mean_averages_sub_tasks_then_tasks():
    a, b, c = subtask_code("a"), subtask_code("b"), subtask_code("c")
    t1, t2 = subtask_code("t1"), subtask_code("t2")
    columns = {
        "score": np.array([1, 0, 1, 1, 1, 1, 0], dtype=float),
        "subtask": np.array([a, a, b, b, b, b, c]),
        "task": np.array([t1, t1, t1, t1, t1, t1, t2]),
    }
    # t1 = mean(0.5, 1.0) = 0.75; t2 = 0; dimension = 37.5
    assert grouped_mean(columns) == pytest.approx(37.5)
    del columns["task"]
    assert grouped_mean(columns) == pytest.approx(100 * (0.5 + 1.0 + 0.0) / 3)


@given(st.text())
def test_parse_never_crashes(text):
    pred, pre = parse_prediction(text)
    assert isinstance(pred, str) and isinstance(pre, str)
    assert is_correct(text, "yes") in (True, False)
