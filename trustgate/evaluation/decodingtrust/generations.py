"""Readers for DecodingTrust's stored generation files, in the three shapes its code wrote them.

* stereotype: CSV, one row per statement, columns gen_0..gen_24 holding a Python-literal dict
  {"agreeability_num": ..., "output": "<reply>"};
* fairness, OOD, adversarial demonstrations: ONE JSON document holding a list, one entry per
  item: [request messages, OpenAI response] pairs, or the response's `choices` list alone;
  DecodingTrust's later layout {"requests": [...], "responses": [...]} is read too;
* privacy: JSON lines, each with its own prompt, ground truth and `continuation`.

Every reader raises CorruptDataError naming the file (and line or row) it cannot read.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate.util.errors import CorruptDataError

FIX = "restore the file from DecodingTrust's repository (or delete it so the part is reported as missing)"
GENERATIONS_PER_STATEMENT = 25


@dataclass(frozen=True)
class Stored:
    """One stored generation: the reply, and the request messages when the file kept them."""

    text: str
    request: tuple[tuple[str, str], ...] | None = None


def _bad(where: str, problem: str) -> CorruptDataError:
    return CorruptDataError(where, problem, FIX)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(str(path), f"not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise _bad(str(path), f"cannot be read ({exc.strerror or exc})") from exc


# OpenAI's few-shot form, which DecodingTrust's fairness requests use: a demonstration is a system
# message named example_user/example_assistant. The model sees a user or an assistant turn, which
# is how trustgate renders a demonstration, so the names map to those roles.
NAMED_EXAMPLE_ROLES = {"example_user": "user", "example_assistant": "assistant"}


def _role(message: dict[str, Any]) -> str:
    role = str(message["role"])
    return NAMED_EXAMPLE_ROLES.get(str(message.get("name")), role) if role == "system" else role


def messages(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    """Chat messages as (role, content) pairs; a bare string is one user message."""
    if isinstance(raw, str):
        return (("user", raw),)
    try:
        return tuple((_role(m), str(m["content"])) for m in raw)
    except (KeyError, TypeError, AttributeError) as exc:
        raise _bad(where, "the request is not a list of chat messages") from exc


def _reply(response: Any, where: str) -> str:
    choices = response.get("choices") if isinstance(response, dict) else response
    try:
        return str(choices[0]["message"]["content"])
    except (KeyError, IndexError, TypeError) as exc:
        raise _bad(where, "no choices[0].message.content in the stored response") from exc


def _entry(entry: Any, where: str) -> Stored:
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict) and "choices" in entry[1]:
        return Stored(_reply(entry[1], where), messages(entry[0], where))
    return Stored(_reply(entry, where))


def read_generation_list(path: Path) -> list[Stored]:
    """A fairness/OOD/adv-demo generation file: one entry per item, in DecodingTrust's order."""
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise _bad(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg})") from exc
    if isinstance(document, dict) and "responses" in document:
        requests = document.get("requests") or [None] * len(document["responses"])
        document = [[request, response] for request, response in zip(requests, document["responses"], strict=False)]
    if not isinstance(document, list):
        raise _bad(str(path), "not a JSON list of generations")
    return [_entry(entry, f"{path}[{index}]") for index, entry in enumerate(document)]


def read_generation_lines(path: Path) -> list[dict[str, Any]]:
    """A privacy generation file: one JSON object per line (blank lines skipped)."""
    rows = []
    for number, line in enumerate(_read_text(path).split("\n"), 1):  # not splitlines: U+2028 is text
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(f"{path}:{number}", f"not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise _bad(f"{path}:{number}", "not a JSON object")
        rows.append(row)
    return rows


def _output(cell: str, where: str) -> str:
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise _bad(where, "the cell is not DecodingTrust's {'agreeability_num': ..., 'output': ...}") from exc
    if not isinstance(value, dict) or "output" not in value:
        raise _bad(where, "the cell has no 'output'")
    return str(value["output"])


def read_stereotype_csv(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(system prompt, user prompt, the 25 replies gen_0..gen_24) per CSV data row, in file order.
    The user prompt is the input DecodingTrust stored, not the whole user message it sent."""
    csv.field_size_limit(1 << 30)  # a row holds 25 long replies
    try:
        rows = list(csv.DictReader(io.StringIO(_read_text(path), newline="")))
    except csv.Error as exc:
        raise _bad(str(path), f"not valid CSV ({exc})") from exc
    columns = [f"gen_{choice}" for choice in range(GENERATIONS_PER_STATEMENT)]
    if rows and any(column not in rows[0] for column in ("system_prompt", "user_prompt", *columns)):
        raise _bad(str(path), "no system_prompt, user_prompt and gen_0..gen_24 columns")
    return [
        (
            row["system_prompt"],
            row["user_prompt"],
            tuple(_output(row[column], f"{path} row {r} {column}") for column in columns),
        )
        for r, row in enumerate(rows)
    ]


def request_difference(request: Sequence[tuple[str, str]], rendered: Sequence[tuple[str, str]]) -> str | None:
    """Where a stored request first differs from trustgate's rendering of the item it is scored
    as, compared whole (every message: role and text, exactly); None when they are the same."""
    for index, (stored, own) in enumerate(zip(request, rendered, strict=False)):  # lengths: below
        if stored != own:
            what = "role" if stored[0] != own[0] else "text"
            return f"message {index + 1} ({own[0]}) differs in its {what}"
    if len(request) != len(rendered):
        return f"{len(request)} messages stored, {len(rendered)} rendered"
    return None
