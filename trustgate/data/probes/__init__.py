"""Embedded probe sets: trustgate-written items in DecodingTrust's schemas, for offline runs.

Nothing here is copied from DecodingTrust: statements, templates and instructions are the
project's own, so scores on them are comparable between models but not to published numbers.
"""
