"""Errors a user can cause. Each names the culprit and the fix in one line."""

from __future__ import annotations


class TrustgateError(Exception):
    """A problem the user can fix: bad option, bad policy file, missing data, corrupt cache."""

    def __init__(self, culprit: str, problem: str, fix: str) -> None:
        self.culprit = culprit
        self.problem = problem
        self.fix = fix
        super().__init__(f"{culprit}: {problem}; {fix}")


class MissingDataError(TrustgateError):
    """A data file or folder a dimension needs is absent (or the hub cannot be reached)."""


class CorruptDataError(TrustgateError):
    """A data file exists but cannot be read or parsed: never a skip, always an error."""


class MissingFieldError(CorruptDataError, KeyError):
    """A data row lacks a field. Also a KeyError, so that code reading optional fields the usual
    way (`except KeyError`) keeps working; its text is the one-line message, not KeyError's repr."""

    __str__ = Exception.__str__


class ModelOutputError(TrustgateError):
    """The model produced something that cannot be evaluated (NaN logits, for instance)."""
