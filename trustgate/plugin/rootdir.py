"""Keep the repository's pytest.ini when a path option points outside the repository.

pytest chooses its rootdir and ini file from the positional arguments *before* any plugin
has registered its options. In `pytest --trust-data ../shared/decodingtrust`, the folder is
taken for a test path, the common ancestor lies outside this repository, and pytest.ini
(testpaths, markers, addopts) is not found. trustgate's plugin is installed as a pytest11
entry point, so by the time initial conftests load, its options are known and the folder is
read as the option's value; `adopt_repository_ini` then adopts the repository's ini file, as if pytest had
found it. It acts only when pytest found no ini file and was started in this repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.config.findpaths import locate_config  # no public API picks the ini file late

from trustgate.plugin.repository import REPOSITORY


def adopt_repository_ini(early_config: pytest.Config, args: list[str]) -> None:
    """Called from the plugin's `pytest_load_initial_conftests` (tryfirst)."""
    invocation = Path(early_config.invocation_params.dir).resolve()
    if early_config.inipath is not None or invocation != REPOSITORY:
        return
    rootdir, inipath, inicfg, _ = locate_config(invocation, [REPOSITORY])
    if inipath is None or rootdir is None:
        return
    early_config._rootpath = rootdir
    early_config._inipath = inipath
    early_config._inicfg = inicfg
    early_config._inicache.clear()
    # addopts were applied before this hook; apply the ones from the adopted ini file too.
    args[:0] = early_config.getini("addopts")
    early_config.known_args_namespace.confcutdir = str(rootdir)
