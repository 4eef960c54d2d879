"""The repository around the installed `trustgate` package: pytest.ini, the trust tests and
the `compressors/` and `fixtures/` folders, which are not installed as packages of their own
(generic top-level names would collide with other projects in site-packages)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPOSITORY = Path(__file__).resolve().parents[2]
TRUST_TESTS = REPOSITORY / "trust_tests"


def import_compressors() -> ModuleType:
    """`compressors` from this repository, wherever pytest was started."""
    if str(REPOSITORY) not in sys.path:
        # pytest puts the repository on sys.path when it loads conftest.py; an entry-point-only
        # run (a folder of trust tests elsewhere) may not have.
        sys.path.insert(0, str(REPOSITORY))
    return importlib.import_module("compressors")
