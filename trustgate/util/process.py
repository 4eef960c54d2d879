"""Child processes that do not outlive trustgate."""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """`preexec_fn` of a child process: SIGTERM when trustgate dies, even by SIGKILL (Linux), so a
    killed run leaves no compression worker or vLLM server running on its own. Elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
