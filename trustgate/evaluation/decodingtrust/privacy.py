"""Privacy: `privacy/generations/{enron,pii,understanding}/..._<model>_...jsonl`.

Each stored line carries its own prompt, ground truth and reply, so an item is built from the
line itself (`dt_index` = line number, 0-based): DecodingTrust's Enron prompts (the known-domain
hint with "<|endoftext|>"), and DecodingTrust's PII values and understanding phrasings (the
gate's own PII and understanding prompts are trustgate's). Files read, as result_agg.py reads them:
* Enron: 27 modes, context-{50,100,200} and {knownzero,zero,one,five}-shot[-non-domain] x a-d;
* PII: 12 types x {0shotattack, 3shotprotect, 3shotattack}, only the first 100 lines of each
  (file names with the type's spaces, as stored, or without, as result_agg.py spells them; in
  any letter case, since the stored files of type "ssn" are named SSN_... and those of "social
  security number" Social Security Number_..., which a case-insensitive file system finds);
* understanding: question 1 of 8 topics.
Codes per file: Enron "R" (rejected) or the digit 4 x exact + 2 x local + domain; PII and
understanding L (leak), R (rejected), O (other).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustgate.dimensions.base import Item, Outcome
from trustgate.dimensions.privacy import PII_MODES, PII_TYPES
from trustgate.dimensions.privacy_rules import LISTENER
from trustgate.evaluation.decodingtrust.generations import messages, read_generation_lines
from trustgate.evaluation.decodingtrust.models import StoredModel
from trustgate.evaluation.decodingtrust.pairing import Paired, Pairing, first_present
from trustgate.util.errors import CorruptDataError

ENRON_MODES = (
    *((f"context-{k}", "", "s3333") for k in (50, 100, 200)),
    *(
        (mode, template, "s3294")
        for mode in (
            "knownzero-shot", "one-shot", "five-shot", "zero-shot", "one-shot-non-domain", "five-shot-non-domain",
        )
        for template in "abcd"
    ),
)  # fmt: skip
UNDERSTANDING_TOPICS = ("divorce", "health", "party", "vote", "exam", "bankrupt", "layoff", "promotion")
PII_LINES = 100  # result_agg.py scores only the first 100 lines of a PII file
DIR = "privacy/generations"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _field(line: dict[str, Any], name: str, where: str) -> str:
    if name not in line:
        raise CorruptDataError(where, f"no {name!r} in the stored line", "restore the file from DecodingTrust")
    return str(line[name])


def _items(dt_file: str, lines: Sequence[dict[str, Any]], make) -> tuple[tuple[Item, ...], tuple[tuple[str], ...]]:
    items, responses, seen = [], [], set()
    for index, line in enumerate(lines):
        where = f"{dt_file}:{index + 1}"
        item = make(index, line, where)
        if item.id in seen:  # ids stay unique when a file repeats a target
            item = Item(f"{item.id}@{index}", item.messages, item.target, item.meta, item.sample_key)
        seen.add(item.id)
        items.append(item)
        responses.append((_field(line, "continuation", where),))
    return tuple(items), tuple(responses)


def _enron(root: Path, model: StoredModel, pairing: Pairing) -> None:
    absent = []
    for mode, template, size in ENRON_MODES:
        label = f"{mode}-{template}" if template else mode
        dt_file = f"{DIR}/enron/{label}_{size}_{model.name}_1.jsonl"
        if not (root / dt_file).is_file():
            absent.append(dt_file)
            continue

        def make(index: int, line: dict, where: str, mode=mode, template=template, dt_file=dt_file) -> Item:
            truth = _field(line, "gt-email", where)
            return Item(
                id=f"enron-{mode}-{template}-{_key(truth)}" if template else f"enron-{mode}-{_key(truth)}",
                messages=messages(_field(line, "prompt", where), where),
                target=truth,
                meta={"kind": "enron", "mode": mode, "template": template, "dt_file": dt_file, "dt_index": index},
                sample_key=_key(truth),
            )

        _add(pairing, "enron", dt_file, read_generation_lines(root / dt_file), make)
    pairing.missing("enron", absent, len(ENRON_MODES))


def _pii_file(root: Path, names: Sequence[str], listing: dict[str, str]) -> str | None:
    """The first name present as written, else in another letter case."""
    found = first_present(root, [f"{DIR}/pii/{name}" for name in names])
    if found is None:
        found = next((f"{DIR}/pii/{listing[n.lower()]}" for n in names if n.lower() in listing), None)
    return found


def _pii(root: Path, model: StoredModel, pairing: Pairing) -> None:
    absent = []
    folder = root / DIR / "pii"
    listing = {path.name.lower(): path.name for path in folder.iterdir()} if folder.is_dir() else {}
    for pii in PII_TYPES:
        for mode in PII_MODES:
            names = [f"{spelling}_{mode}_s100_{model.name}_1.jsonl" for spelling in (pii, pii.replace(" ", ""))]
            dt_file = _pii_file(root, names, listing)
            if dt_file is None:
                absent.append(f"{DIR}/pii/{names[0]}")
                continue

            def make(index: int, line: dict, where: str, pii=pii, mode=mode, dt_file=dt_file) -> Item:
                return Item(
                    id=f"pii-{pii.replace(' ', '')}-{mode}-{index}",
                    messages=messages(_field(line, "prompt", where), where),
                    target=_field(line, "gt", where),
                    meta={"kind": "pii", "pii": pii, "mode": mode, "dt_file": dt_file, "dt_index": index},
                    sample_key=f"case-{index}",
                )

            _add(pairing, "pii", dt_file, read_generation_lines(root / dt_file)[:PII_LINES], make)
    pairing.missing("pii", absent, len(PII_TYPES) * len(PII_MODES))


def _understanding(root: Path, model: StoredModel, pairing: Pairing) -> None:
    absent = []
    for topic in UNDERSTANDING_TOPICS:
        dt_file = f"{DIR}/understanding/{topic}_t0_s100_{model.name}_ques1_1.jsonl"
        if not (root / dt_file).is_file():
            absent.append(dt_file)
            continue

        def make(index: int, line: dict, where: str, topic=topic, dt_file=dt_file) -> Item:
            word = str(line.get("word", ""))
            meta = {"kind": "understanding", "topic": topic, "listener": LISTENER, "word": word}
            return Item(
                id=f"understanding-{topic}-{index}",
                messages=messages(_field(line, "prompt", where), where),
                meta={**meta, "dt_file": dt_file, "dt_index": index},
                sample_key=f"phrasing-{word}",
            )

        _add(pairing, "understanding", dt_file, read_generation_lines(root / dt_file), make)
    pairing.missing("understanding", absent, len(UNDERSTANDING_TOPICS))


def _add(pairing: Pairing, scenario: str, dt_file: str, lines: list[dict], make) -> None:
    if not lines:  # result_agg.py leaves a file without lines out of the mean
        pairing.note(scenario, f"{dt_file} has no lines (left out, as DecodingTrust does)")
        return
    items, responses = _items(dt_file, lines, make)
    pairing.groups.append(Paired(scenario, dt_file, items, responses, size=len(lines)))


def pair(root: Path, model: StoredModel) -> Pairing:
    pairing = Pairing("privacy")
    _enron(root, model, pairing)
    _pii(root, model, pairing)
    _understanding(root, model, pairing)
    if pairing.groups and not (root / DIR / "pii_jailbreak").is_dir():
        pairing.remarks.append(
            "DecodingTrust's calculate_scores reports no privacy score without pii_jailbreak generations "
            "(weight 0); trustgate scores the three weighted scenarios"
        )
    return pairing


def codes(group: Paired, outcomes: Sequence[Outcome]) -> str:
    if group.scenario == "enron":
        return "".join(
            "R" if o.refusal else str(round(4 * o.columns["exact"] + 2 * o.columns["local"] + o.columns["domain"]))
            for o in outcomes
        )
    return "".join({"leak": "L", "refusal": "R", "other": "O"}[o.labels[0]] for o in outcomes)
