"""What pairing produces: each stored generation file's items (trustgate Items, tagged with where
DecodingTrust keeps them) and their replies, and what DecodingTrust's aggregate would read but
is absent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trustgate.dimensions.base import Item, Messages
from trustgate.evaluation.decodingtrust.generations import read_generation_list, request_difference
from trustgate.util.errors import CorruptDataError


@dataclass(frozen=True)
class Paired:
    """One DecodingTrust generation file, paired with its inputs."""

    scenario: str  # the trustgate scenario the file belongs to
    dt_file: str  # path relative to DATA_DIR
    items: tuple[Item, ...]
    responses: tuple[tuple[str, ...], ...]
    size: int  # DecodingTrust's item count of the file: CSV data rows, list entries or lines
    requests_checked: int = 0  # stored requests compared whole with trustgate's rendering, all equal (0: none stored)
    partial: str | None = None  # why this file is not all of DecodingTrust's items
    dt_task: str | None = None  # the task name DecodingTrust's aggregate reads the file as, where it names one


@dataclass
class Pairing:
    """Every file of one dimension, and per scenario what keeps it from DecodingTrust's full set."""

    dimension: str
    groups: list[Paired] = field(default_factory=list)
    partial: dict[str, list[str]] = field(default_factory=dict)  # scenario -> notes
    remarks: list[str] = field(default_factory=list)  # DecodingTrust quirks worth knowing, not partial

    def note(self, scenario: str, text: str) -> None:
        self.partial.setdefault(scenario, []).append(text)

    def missing(self, scenario: str, absent: Sequence[str], total: int) -> None:
        """Label a scenario partial when some of the `total` files DecodingTrust reads are absent."""
        if absent:
            self.note(scenario, f"{len(absent)} of {total} DecodingTrust generation files absent (e.g. {absent[0]})")


def tagged(item: Item, dt_file: str, dt_index: int, **extra: Any) -> Item:
    """The item with `dt_file` and `dt_index` (and any extra keys) in its meta."""
    return replace(item, meta={**item.meta, "dt_file": dt_file, "dt_index": dt_index, **extra})


def first_present(root: Path, candidates: Sequence[str]) -> str | None:
    """The first candidate path (relative to root) that exists."""
    return next((c for c in candidates if (root / c).is_file()), None)


def check_requests(
    root: Path, dt_file: str, requests: Sequence[Messages | None], items: Sequence[Item], task: str
) -> int:
    """How many stored requests were compared with the items they are scored as (every message);
    any that differs makes the file an error naming it, since its replies answer another task."""
    pairs = enumerate(zip(requests, items, strict=True))
    compared = [(i, request, item) for i, (request, item) in pairs if request is not None]
    differing = [(i, request_difference(request, item.messages)) for i, request, item in compared]
    differing = [(i, what) for i, what in differing if what is not None]
    if differing:
        index, what = differing[0]
        raise CorruptDataError(
            str(root / dt_file),
            f"{len(differing)} of {len(compared)} stored requests are not trustgate's rendering of {task} "
            f"(first: entry {index}, {what})",
            "score it as the task its requests ask, or take it out of the folder if DecodingTrust's aggregate "
            "does not read it",
        )
    return len(compared)


def by_position(
    root: Path,
    scenario: str,
    dt_file: str,
    items: Sequence[Item],
    inputs: str,
    prefix: bool = False,
    dt_task: str | None = None,
) -> Paired:
    """Entry i of a generation list answers item i (DecodingTrust pairs by position). The counts
    must agree, except that with `prefix` a shorter file answers the first items (DecodingTrust's
    OOD evaluation scores an interrupted file over the entries it has). Stored requests are
    checked whole against the items (`check_requests`)."""
    stored = read_generation_list(root / dt_file)
    partial = None
    if prefix and len(stored) < len(items):
        partial = f"{dt_file} holds {len(stored)} of {len(items)} generations (scored over those, as DecodingTrust)"
        items = items[: len(stored)]
    if len(stored) != len(items):
        raise CorruptDataError(
            str(root / dt_file),
            f"{len(stored)} generations but {len(items)} inputs in {inputs}",
            "use the generation file written for these inputs (DecodingTrust pairs them by position)",
        )
    checked = check_requests(root, dt_file, [s.request for s in stored], items, inputs)
    return Paired(
        scenario=scenario,
        dt_file=dt_file,
        items=tuple(tagged(item, dt_file, index) for index, item in enumerate(items)),
        responses=tuple((s.text,) for s in stored),
        size=len(stored),
        requests_checked=checked,
        partial=partial,
        dt_task=dt_task,
    )
