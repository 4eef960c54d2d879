"""Stereotype: `stereotype/generations/<org>/<category>/<model>_<topic>.csv`, 16 topics x 3 categories.

Paired as DecodingTrust's calculate_agreeability pairs them: each statement (one trustgate item
per (group, template) of the topic) takes the FIRST CSV row whose user prompt is its text, and
its 25 replies gen_0..gen_24. `dt_index` is that CSV data row, `dt_choice[k]` the gen column of
response k. The row's request (system prompt, and the user message DecodingTrust builds from the
stored input) is compared whole with the item's; a file with any that differs is an error.
Codes: per file a list over its CSV rows of 25 characters A/D/N.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trustgate.data import TrustData
from trustgate.dimensions.base import Outcome
from trustgate.dimensions.stereotype import AGREE, DISAGREE, NO_RESPONSE, SCENARIOS, load, statement_key, user_message
from trustgate.evaluation.decodingtrust.generations import GENERATIONS_PER_STATEMENT, read_stereotype_csv
from trustgate.evaluation.decodingtrust.models import StoredModel
from trustgate.evaluation.decodingtrust.pairing import Paired, Pairing, check_requests, tagged
from trustgate.util.errors import CorruptDataError

TOPICS = (
    "hiv", "terrorists", "drug_addicts", "intelligence", "greed", "parents", "country", "technology", "weak",
    "driving", "criminals", "drug_dealers", "jobs", "leadership", "stem", "hygiene",
)  # fmt: skip
CODES = {AGREE: "A", DISAGREE: "D", NO_RESPONSE: "N"}


def generation_file(model: StoredModel, category: str, topic: str) -> str:
    return f"stereotype/generations/{model.org}/{category}/{model.name}_{topic}.csv"


def _pair_file(root: Path, scenario: str, dt_file: str, items: Sequence) -> Paired:
    rows = read_stereotype_csv(root / dt_file)
    first_row: dict[str, int] = {}
    for index, (_, prompt, _) in enumerate(rows):
        first_row.setdefault(statement_key(prompt), index)
    paired, responses = [], []
    for item in items:
        index = first_row.get(item.sample_key)
        if index is None:
            raise CorruptDataError(
                str(root / dt_file),
                f"{len(rows)} rows, none for the statement of item {item.id} ({len(items)} statements expected)",
                "use the complete generation file DecodingTrust wrote for this topic",
            )
        paired.append(tagged(item, dt_file, index, dt_choice=list(range(GENERATIONS_PER_STATEMENT))))
        responses.append(rows[index][2])
    # The CSV keeps the system prompt and the input; the user message DecodingTrust sent is rebuilt
    # by its rule (user_message), so the check covers the system prompt and the statement text.
    requests = [(("system", rows[i.meta["dt_index"]][0]), ("user", user_message(rows[i.meta["dt_index"]][1])))
                for i in paired]  # fmt: skip
    checked = check_requests(root, dt_file, requests, paired, f"the {scenario} statements of {dt_file}")
    return Paired(scenario, dt_file, tuple(paired), tuple(responses), size=len(rows), requests_checked=checked)


def pair(root: Path, model: StoredModel) -> Pairing:
    pairing = Pairing("stereotype")
    for scenario in SCENARIOS:
        files = {topic: generation_file(model, scenario, topic) for topic in TOPICS}
        present = {topic: f for topic, f in files.items() if (root / f).is_file()}
        pairing.missing(scenario, [f for f in files.values() if f not in present.values()], len(TOPICS))
        if not present:
            continue
        by_topic: dict[str, list] = {}
        for item in load(TrustData("local", root), scenario).items:
            by_topic.setdefault(item.meta["topic"], []).append(item)
        for topic, dt_file in present.items():
            pairing.groups.append(_pair_file(root, scenario, dt_file, by_topic.get(topic, [])))
    return pairing


def codes(group: Paired, outcomes: Sequence[Outcome]) -> list[str]:
    """Per CSV data row, its 25 labels as A/D/N ("" for a row no statement took)."""
    rows = [""] * group.size
    for item, outcome in zip(group.items, outcomes, strict=True):
        rows[item.meta["dt_index"]] = "".join(CODES[label] for label in outcome.labels)
    return rows
