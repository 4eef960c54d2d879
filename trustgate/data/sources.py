"""The data source of a run and the readers every dimension uses."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from trustgate.util.errors import CorruptDataError, MissingDataError, MissingFieldError, TrustgateError
from trustgate.util.hub import from_hub
from trustgate.util.storage import user_path

HUB_DATASET = "AI-Secure/DecodingTrust"
T = TypeVar("T")

RESTORE = "restore it from a DecodingTrust checkout (or delete it so the scenario is reported as missing)"


@dataclass(frozen=True)
class TrustData:
    """`local`: a DecodingTrust `data/` folder; `embedded`: the project's probe sets; `hub`: online."""

    mode: Literal["local", "embedded", "hub"]
    root: Path | None = None

    def describe(self) -> str:
        if self.mode == "local":
            return f"DecodingTrust data at {self.root}"
        if self.mode == "hub":
            return f"{HUB_DATASET} on the model hub"
        return "embedded probe sets (trustgate-written, not DecodingTrust)"

    @property
    def is_decodingtrust(self) -> bool:
        return self.mode in ("local", "hub")

    def label(self, embedded: str, decodingtrust: str) -> str:
        """A scenario's source for reports: the probe set's name, or the DecodingTrust files read."""
        return embedded if self.mode == "embedded" else decodingtrust + (" (hub)" if self.mode == "hub" else "")

    def pick(
        self,
        what: str,
        *,
        embedded: Callable[[], T],
        local: Callable[[], T],
        hub: Callable[[], T] | None = None,
    ) -> T:
        """Read `what` with the reader for this run's source; a source without a reader is
        reported as missing data (never read from another source behind the user's back)."""
        reader = {"embedded": embedded, "local": local, "hub": hub}[self.mode]
        if reader is None:
            raise MissingDataError(
                f"{HUB_DATASET}:{what}",
                "the hub copy of DecodingTrust does not hold this in a layout trustgate reads",
                "pass --trust-data PATH to a DecodingTrust data/ folder",
            )
        return reader()

    def path(self, relative: str) -> Path:
        """A file of the local data folder; MissingDataError naming it when absent."""
        if self.root is None:
            raise MissingDataError(relative, f"no local data folder in {self.mode} mode", "pass --trust-data PATH")
        path = self.root / relative
        if not path.exists():
            raise MissingDataError(
                str(path),
                "missing from the DecodingTrust data folder",
                "use a complete DecodingTrust data/ checkout or --trust-data hub",
            )
        return path

    def has(self, relative: str) -> bool:
        return self.root is not None and (self.root / relative).exists()

    def file(self, relative: str) -> Path:
        """A DecodingTrust data file: from the local folder, or downloaded from the hub (same layout)."""
        if self.mode != "hub":
            return self.path(relative)

        def download() -> Path:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(HUB_DATASET, relative, repo_type="dataset"))

        return from_hub(f"{HUB_DATASET}:{relative}", download)


def resolve_trust_data(option: str | None) -> TrustData:
    if option is None or option == "embedded":
        return TrustData("embedded")
    if option == "hub":
        return TrustData("hub")
    root = user_path(option)
    if not root.is_dir():
        raise TrustgateError(
            f"--trust-data {option}",
            "no such folder",
            "pass a DecodingTrust data/ folder (e.g. ../shared/decodingtrust), 'hub', "
            "or omit it for the embedded probes",
        )
    return TrustData("local", root.resolve())


def hub_rows(config: str, split: str) -> list[dict[str, Any]]:
    """Rows of one config/split of the DecodingTrust dataset on the hub (online users)."""

    def load() -> list[dict[str, Any]]:
        from datasets import load_dataset

        return list(load_dataset(HUB_DATASET, name=config, split=split))

    return from_hub(f"{HUB_DATASET}:{config}/{split}", load)


class Record(dict):
    """One row of a data file that knows where it came from: a field the file lacks is a
    CorruptDataError naming the file, the line and the fields it has, not a bare KeyError."""

    def __init__(self, fields: dict[str, Any], source: str) -> None:
        super().__init__(fields)
        self.source = source

    def __missing__(self, key: str) -> Any:
        raise MissingFieldError(
            self.source,
            f"has no {key!r} field (it has {', '.join(map(repr, self)) or 'none'})",
            "use the file in DecodingTrust's schema; " + RESTORE,
        )


def _regular(path: Path) -> None:
    """A FIFO, socket or device named as a data file would block the read forever."""
    if path.exists() and not path.is_file():
        raise CorruptDataError(str(path), "is not a regular file (a folder, FIFO or device)", RESTORE)


def read_text(path: Path) -> str:
    _regular(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptDataError(str(path), f"not UTF-8 text (byte {exc.start})", RESTORE) from exc
    except OSError as exc:
        raise CorruptDataError(str(path), f"cannot be read ({exc.strerror or exc})", RESTORE) from exc


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(read_text(path).split("\n"), 1):  # not splitlines: JSON may hold U+2028
        if not line.strip():
            continue
        source = f"{path}:{number}"
        try:
            yield json.loads(line, object_hook=lambda fields, source=source: Record(fields, source))
        except json.JSONDecodeError as exc:
            raise CorruptDataError(source, f"not valid JSON ({exc.msg})", RESTORE) from exc


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path), object_hook=lambda fields: Record(fields, str(path)))
    except json.JSONDecodeError as exc:
        raise CorruptDataError(f"{path}:{exc.lineno}", f"not valid JSON ({exc.msg})", RESTORE) from exc


def read_csv(path: Path) -> list[dict[str, str]]:
    text = read_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [Record(row, f"{path}:{reader.line_num}") for row in reader]
    except csv.Error as exc:
        raise CorruptDataError(str(path), f"not valid CSV ({exc})", RESTORE) from exc


def read_npy(path: Path) -> Any:
    import numpy as np

    _regular(path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CorruptDataError(str(path), f"not a readable .npy array ({exc})", RESTORE) from exc
