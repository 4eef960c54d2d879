"""Utility: MMLU 5-shot accuracy, the paper's yardstick for what compression costs in capability.

Scenario: mmlu_5shot, every subject's test questions with that subject's five dev questions as
demonstrations. The prompt keeps the usual layout ("The following are multiple choice
questions (with answers) about <subject>.", each question with lettered choices and
"Answer:"), sent as chat: each demonstration is a user turn answered by an assistant turn
with its letter, the question is the last user turn.
Parser: the first standalone letter A-D of the response ("B", "(B)", "B.", "Answer: B");
a response without one is wrong and counts as a non-answer (reported as the refusal rate).
Metric: 100 x accuracy over all questions (micro average, as MMLU reports it).
Data: --trust-data PATH looks for Hendrycks' CSV release at PATH/mmlu/{dev,test}/<subject>_{dev,test}.csv
(or PATH/mmlu/data/...); --trust-data hub loads cais/mmlu; the default is trustgate's own questions.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from trustgate.data import TrustData, from_hub, read_text
from trustgate.data.probes import utility as probes
from trustgate.dimensions.base import Dimension, Item, Outcome, ScenarioData, share
from trustgate.util.errors import CorruptDataError, MissingDataError

SCENARIOS = ("mmlu_5shot",)
LETTERS = "ABCD"
SHOTS = 5
HUB_MMLU = "cais/mmlu"
_LETTER = re.compile(r"(?<![A-Za-z])([ABCD])(?![A-Za-z])")

Question = dict[str, Any]  # {"question", "choices": [4], "answer": "A".."D", "subject"}


def parse_letter(response: str) -> str | None:
    """The first A-D that stands alone (not inside a word such as 'Answer'); None when there is none."""
    match = _LETTER.search(response)
    return match.group(1) if match else None


def score_item(item: Item, responses: Sequence[str]) -> Outcome:
    letters = [parse_letter(r) for r in responses]
    return Outcome(
        score=share([letter == item.target for letter in letters]),
        refusal=share([letter is None for letter in letters]),
        labels=tuple(letter or "none" for letter in letters),
    )


def format_question(question: Question) -> str:
    lines = [question["question"].strip()]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, question["choices"], strict=True)]
    return "\n".join(lines) + "\nAnswer:"


def subject_title(subject: str) -> str:
    return subject.replace("_", " ")


def messages_for(question: Question, demos: Sequence[Question]) -> tuple[tuple[str, str], ...]:
    header = f"The following are multiple choice questions (with answers) about {subject_title(question['subject'])}."
    turns: list[tuple[str, str]] = []
    for demo in demos:
        turns += [("user", format_question(demo)), ("assistant", demo["answer"])]
    turns.append(("user", format_question(question)))
    role, first = turns[0]
    turns[0] = (role, f"{header}\n\n{first}")
    return tuple(turns)


def _read_csv_questions(path: Path, subject: str) -> list[Question]:
    rows = list(csv.reader(io.StringIO(read_text(path), newline="")))
    questions = []
    for number, row in enumerate(rows, 1):
        if len(row) != 6 or row[5].strip() not in LETTERS:
            raise CorruptDataError(f"{path}:{number}", "not an MMLU row (question, A, B, C, D, answer)", "restore it")
        questions.append({"question": row[0], "choices": row[1:5], "answer": row[5].strip(), "subject": subject})
    return questions


def _mmlu_root(data: TrustData) -> Path:
    for relative in ("mmlu", "mmlu/data"):
        if data.has(f"{relative}/test") and data.has(f"{relative}/dev"):
            return data.root / relative
    raise MissingDataError(
        f"{data.root}/mmlu/{{dev,test}}/",
        "no MMLU copy in the data folder (MMLU is not part of DecodingTrust's data)",
        "unpack Hendrycks' MMLU data.tar there (dev/ and test/ with <subject>_{dev,test}.csv), or use --trust-data hub",
    )


@cache
def _local_questions(root: Path) -> tuple[dict[str, list[Question]], dict[str, list[Question]]]:
    tests, devs = {}, {}
    for path in sorted((root / "test").glob("*_test.csv")):
        subject = path.name[: -len("_test.csv")]
        dev_path = root / "dev" / f"{subject}_dev.csv"
        if not dev_path.exists():
            raise MissingDataError(str(dev_path), "missing: the 5-shot demonstrations of that subject", "restore it")
        tests[subject] = _read_csv_questions(path, subject)
        devs[subject] = _read_csv_questions(dev_path, subject)
    if not tests:
        raise MissingDataError(f"{root}/test", "no <subject>_test.csv files", "unpack Hendrycks' MMLU data there")
    return tests, devs


def _hub_split(split: str) -> dict[str, list[Question]]:
    def load_rows() -> Any:
        from datasets import load_dataset

        return load_dataset(HUB_MMLU, "all", split=split)

    by_subject: dict[str, list[Question]] = {}
    for row in from_hub(f"{HUB_MMLU}:all/{split}", load_rows):
        question = {
            "question": row["question"],
            "choices": list(row["choices"]),
            "answer": LETTERS[int(row["answer"])],
            "subject": row["subject"],
        }
        by_subject.setdefault(row["subject"], []).append(question)
    return by_subject


def _local_source(data: TrustData) -> tuple[Mapping[str, list[Question]], Mapping[str, list[Question]], str]:
    root = _mmlu_root(data)
    tests, devs = _local_questions(root)
    return tests, devs, f"MMLU CSV at {root}"


def _questions(data: TrustData) -> tuple[Mapping[str, list[Question]], Mapping[str, list[Question]], str]:
    return data.pick(
        "mmlu",
        embedded=lambda: (
            probes.mmlu_test_questions(),
            probes.mmlu_dev_questions(),
            "trustgate MMLU-style questions (hand-written)",
        ),
        local=lambda: _local_source(data),
        hub=lambda: (_hub_split("test"), _hub_split("dev"), f"{HUB_MMLU} (hub)"),
    )


def load(data: TrustData, scenario: str) -> ScenarioData:
    tests, devs, source = _questions(data)
    items = []
    for subject in sorted(tests):
        demos = devs.get(subject, [])[:SHOTS]
        if len(demos) < SHOTS:
            raise MissingDataError(f"{source}: {subject}", f"only {len(demos)} dev questions", f"{SHOTS} are needed")
        for index, question in enumerate(tests[subject]):
            items.append(
                Item(
                    id=f"{subject}-{index:04d}",
                    messages=messages_for(question, demos),
                    target=question["answer"],
                    meta={"subject": subject},
                )
            )
    return ScenarioData(items=tuple(items), source=source, max_new_tokens=16)


DIMENSION = Dimension(
    name="utility",
    scenarios=SCENARIOS,
    load=load,
    score_item=score_item,
    max_new_tokens=16,
    doc_uri="https://github.com/hendrycks/test (MMLU)",
    description="MMLU 5-shot accuracy; the first standalone A-D letter of the response, none counts as wrong",
)
