"""The one wrapper around calls to the model hub (datasets, huggingface_hub, transformers
pipelines): whatever they raise for "offline", "not found" or "gated" becomes one line that
names what was asked for and how to do without it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trustgate.util.errors import MissingDataError, TrustgateError

T = TypeVar("T")
OFFLINE_FIX = "go online or pass --trust-data PATH to a local DecodingTrust data folder"


def from_hub(
    culprit: str,
    fetch: Callable[[], T],
    fix: str = OFFLINE_FIX,
    error: type[TrustgateError] = MissingDataError,
) -> T:
    """Run one hub call; any failure (other than our own errors) becomes `error(culprit, ..., fix)`."""
    try:
        return fetch()
    except TrustgateError:
        raise
    except Exception as exc:  # the hub libraries raise many types for "not reachable"
        raise error(culprit, f"could not load it from the hub ({type(exc).__name__}: {_first_line(exc)})", fix) from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else "no message"
