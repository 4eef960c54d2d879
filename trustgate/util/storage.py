"""On-disk caches: where they live, and how an entry is published atomically under a lock."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from trustgate.util.progress import say

COMPLETE_MARKER = "trustgate-complete.json"
# Files written beside an entry after it is published (the weights fingerprint memo and its
# lock); they are not part of the entry, so they must not make a complete entry look damaged.
SIDECAR_FILES = frozenset({COMPLETE_MARKER, "trustgate-fingerprint.json", "trustgate-fingerprint.json.lock"})


def user_path(text: str | os.PathLike[str]) -> Path:
    """`text` with a leading ~ or ~user expanded, as a shell would; kept literally when that
    user has no home (pathlib raises there, and "~0" is a legal folder or hub-id-like name)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def default_cache_root() -> Path:
    """TRUSTGATE_CACHE, else the XDG cache folder."""
    explicit = os.environ.get("TRUSTGATE_CACHE")
    if explicit:
        return user_path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "trustgate"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(*parts: Any) -> str:
    """sha256 over the canonical JSON of the parts: the one way we build cache keys."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def _manifest(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in SIDECAR_FILES
    }


def entry_is_complete(folder: Path) -> bool:
    """True only when the folder was published whole and no file changed size since."""
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, OSError):
        return False
    return recorded == _manifest(folder)


def read_entry_metadata(folder: Path) -> dict[str, Any]:
    return json.loads((folder / COMPLETE_MARKER).read_text()).get("metadata", {})


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def build_once(
    folder: Path,
    build: Callable[[Path], dict[str, Any]],
) -> tuple[Path, bool]:
    """Return a complete cache entry at `folder`, building it at most once across processes.

    `build` writes into a temporary sibling folder and returns metadata; the folder is renamed
    into place only after the marker (with a size manifest) is written, so readers never see a
    half-written entry. An entry without a valid marker is treated as corrupt and rebuilt.
    Returns (folder, built_now).
    """
    if entry_is_complete(folder):
        return folder, False
    with locked(folder):
        if entry_is_complete(folder):
            return folder, False
        if folder.exists():
            # A cache entry: rebuilding it loses nothing, but a person should know why this run is slow.
            say(f"{folder}: the cached entry is incomplete or was changed since it was written; rebuilding it")
            shutil.rmtree(folder)
        # Under the lock nobody else builds this entry: a staging folder left here is a build that
        # was killed (SIGKILL, power loss) and would otherwise stay forever (hundreds of MB).
        for stale in folder.parent.glob(glob.escape(folder.name) + ".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".partial-", dir=folder.parent))
        try:
            metadata = build(staging)
            marker = {"files": _manifest(staging), "metadata": metadata}
            (staging / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return folder, True
