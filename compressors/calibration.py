"""Calibration text: C4 as in the paper when the hub is reachable, else an offline fallback.

The fallback is prose the project assembles from the docstrings of Python's standard library:
it exists on every machine that runs Python, is deterministic for a given Python version, and
is English text rather than the evaluation data (calibrating on the test prompts would leak).
"""

from __future__ import annotations

import importlib
import os
import random
import socket
import sys
from dataclasses import dataclass

from trustgate.util.errors import TrustgateError
from trustgate.util.storage import digest

C4_REPO = "allenai/c4"
C4_SHARD = "en/c4-train.00000-of-01024.json.gz"
# Long enough for a 512-token window with any common tokenizer (about 4 characters a token);
# windows of equal length let llm-compressor calibrate in batches without truncating any sample.
MIN_CHARACTERS = 2400

# Modules whose docstrings are long-form prose; the set is fixed so the corpus is reproducible.
_FALLBACK_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "concurrent.futures",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "http.client",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "logging",
    "mailbox",
    "multiprocessing",
    "numbers",
    "operator",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "re",
    "sched",
    "shelve",
    "shutil",
    "socket",
    "sqlite3",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "timeit",
    "tokenize",
    "typing",
    "unittest",
    "urllib.parse",
    "uuid",
    "warnings",
    "weakref",
    "xml.dom.minidom",
    "zipfile",
    "zoneinfo",
)


@dataclass(frozen=True)
class CalibrationSet:
    source: str  # "c4" or "fallback:python-docstrings-3.11"
    seed: int
    texts: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return digest(self.source, self.seed, self.texts)

    def describe(self) -> str:
        return f"{self.source}, {len(self.texts)} samples, seed {self.seed}"


def _docstring_paragraphs() -> list[str]:
    paragraphs: list[str] = []
    for module_name in _FALLBACK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        objects = [module] + [getattr(module, name) for name in sorted(dir(module)) if not name.startswith("_")]
        for obj in objects:
            doc = getattr(obj, "__doc__", None)
            if (
                isinstance(doc, str)
                and obj is not None
                and (obj is module or getattr(obj, "__module__", "") == module.__name__)
            ):
                text = " ".join(doc.split())
                if len(text) >= 80:
                    paragraphs.append(text)
    return list(dict.fromkeys(paragraphs))


def fallback_calibration(samples: int, seed: int) -> CalibrationSet:
    """Seeded samples, each a run of consecutive docstring paragraphs of at least MIN_CHARACTERS."""
    paragraphs = _docstring_paragraphs()
    rng = random.Random(seed)
    texts = []
    for _ in range(samples):
        start = rng.randrange(len(paragraphs))
        chunk = []
        index = start
        while sum(len(p) for p in chunk) < MIN_CHARACTERS:
            chunk.append(paragraphs[index % len(paragraphs)])
            index += 1
        texts.append("\n\n".join(chunk))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return CalibrationSet(source=f"fallback:python-docstrings-{version}", seed=seed, texts=tuple(texts))


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE") or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def c4_calibration(samples: int, seed: int) -> CalibrationSet:
    from datasets import load_dataset

    shard = load_dataset(C4_REPO, data_files={"train": C4_SHARD}, split="train")
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < samples:
        text = shard[rng.randrange(len(shard))]["text"]
        if len(text) >= MIN_CHARACTERS:
            texts.append(text)
    return CalibrationSet(source="c4", seed=seed, texts=tuple(texts))


C4_UNREACHABLE_FIX = "pass --trust-calibration fallback to calibrate on the offline text (or auto: C4 when reachable)"


def check_c4_reachable() -> None:
    """`--trust-calibration c4` without the hub: one line at configure time, before any work."""
    if not hub_reachable():
        raise TrustgateError(
            "--trust-calibration c4",
            f"the model hub is unreachable (or HF_HUB_OFFLINE is set), so {C4_REPO} cannot load",
            C4_UNREACHABLE_FIX,
        )  # fmt: skip


def calibration_set(samples: int, seed: int, source: str = "auto") -> CalibrationSet:
    """`source`: "c4", "fallback", or "auto" (C4 when the hub answers, else the fallback)."""
    if source == "fallback" or (source == "auto" and not hub_reachable()):
        return fallback_calibration(samples, seed)
    try:
        return c4_calibration(samples, seed)
    except Exception as exc:
        if source == "c4":
            raise TrustgateError(
                "--trust-calibration c4", f"{C4_REPO} did not load ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                C4_UNREACHABLE_FIX,
            ) from exc  # fmt: skip
        return fallback_calibration(samples, seed)
