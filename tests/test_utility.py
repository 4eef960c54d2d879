"""Utility (MMLU 5-shot): letter parser, prompt layout, loaders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.data import TrustData
from trustgate.dimensions import utility
from trustgate.dimensions.base import Item, outcome_columns
from trustgate.util.errors import MissingDataError


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", "B"),
        (" (C) because it is", "C"),
        ("Answer: D", "D"),  # the A of 'Answer' is inside a word
        ("The answer is A.", "A"),
        ("**B**", "B"),
        ("b", None),  # lower case is not a choice letter
        ("ABCD", None),
        ("", None),
        ("I cannot answer that.", None),
    ],
)
def test_parse_letter(response, expected):
    assert utility.parse_letter(response) == expected


@given(st.text())
def test_parser_never_crashes(text):
    assert utility.parse_letter(text) in (None, "A", "B", "C", "D")


def test_accuracy_no_letter_is_wrong_and_a_non_answer():
    items = [Item(id=str(k), messages=(), target="B") for k in range(4)]
    outcomes = utility.DIMENSION.score_items(items, [["B"], ["C"], ["no idea"], ["(B)"]])
    columns = outcome_columns(outcomes)
    assert utility.DIMENSION.metric(columns) == pytest.approx(50.0)
    assert [o.refusal for o in outcomes] == [0.0, 0.0, 1.0, 0.0]


def test_prompt_is_five_shot_chat_in_mmlu_layout():
    demo = {"question": "1+1?", "choices": ["1", "2", "3", "4"], "answer": "B", "subject": "elementary_mathematics"}
    question = {**demo, "question": "2+2?", "answer": "D"}
    messages = utility.messages_for(question, [demo] * 5)
    assert [role for role, _ in messages] == ["user", "assistant"] * 5 + ["user"]
    assert messages[0][1].startswith(
        "The following are multiple choice questions (with answers) about elementary mathematics.\n\n1+1?\nA. 1\nB. 2"
    )
    assert messages[1][1] == "B"
    assert messages[-1][1] == "2+2?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"


def _write_subject(folder, subject, split, rows):
    (folder / split).mkdir(parents=True, exist_ok=True)
    text = "".join(f'"{q}",a,b,c,d,{answer}\n' for q, answer in rows)
    (folder / split / f"{subject}_{split}.csv").write_text(text)


def test_local_hendrycks_layout(tmp_path):
    mmlu = tmp_path / "mmlu"
    _write_subject(mmlu, "virology", "dev", [(f"dev {k}, really?", "A") for k in range(5)])
    _write_subject(mmlu, "virology", "test", [("what, then?", "C"), ("and now?", "D")])
    loaded = utility.load(TrustData("local", tmp_path), "mmlu_5shot")
    assert [item.target for item in loaded.items] == ["C", "D"]
    assert "about virology." in loaded.items[0].messages[0][1]
    assert loaded.items[0].messages[-1][1].startswith("what, then?\nA. a")


def test_local_folder_without_mmlu_is_missing_data(tmp_path):
    with pytest.raises(MissingDataError, match="hub"):
        utility.load(TrustData("local", tmp_path), "mmlu_5shot")


def test_embedded_questions_are_balanced_and_disjoint_from_demos():
    loaded = utility.load(TrustData("embedded"), "mmlu_5shot")
    assert len(loaded.items) >= 150
    letters = [item.target for item in loaded.items]
    assert all(letters.count(letter) > 0.15 * len(letters) for letter in "ABCD")
    for item in loaded.items:
        demos = {content for role, content in item.messages[:-1] if role == "user"}
        assert not any(item.messages[-1][1] in demo for demo in demos)
