"""Where evaluation data comes from: a DecodingTrust data folder, the hub, or embedded probes."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trustgate.errors import MissingDataError, TrustgateError
from trustgate.storage import user_path

HUB_DATASET = "AI-Secure/DecodingTrust"


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

    def path(self, relative: str) -> Path:
        """A file of the data folder; MissingDataError naming it when absent."""
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


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise MissingDataError(
                    f"{path}:{number}", f"not valid JSON ({exc.msg})", "restore the file from DecodingTrust"
                ) from exc


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def hub_dataset(culprit: str, **load_arguments: Any) -> Any:
    """`datasets.load_dataset` on the DecodingTrust repository, failing with one clear error."""
    try:
        from datasets import load_dataset

        return load_dataset(HUB_DATASET, **load_arguments)
    except Exception as exc:  # datasets raises many types for "offline" or "not found"
        raise MissingDataError(
            f"{HUB_DATASET}:{culprit}",
            f"could not load it from the hub ({type(exc).__name__})",
            "go online or pass --trust-data PATH to a local DecodingTrust data folder",
        ) from exc


def hub_rows(config: str, split: str) -> list[dict[str, Any]]:
    """Rows of one config/split of the DecodingTrust dataset on the hub (online users)."""
    return list(hub_dataset(f"{config}/{split}", name=config, split=split))
