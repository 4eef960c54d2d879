"""Mask personal information before text leaves the run in a report attachment.

Privacy scenarios put e-mail addresses, phone numbers, social security and card numbers into
prompts and (when the model leaks them) into responses. The records on disk keep the raw text
for re-scoring; anything rendered for people (Allure attachments) goes through `redact`.
The patterns err towards masking: a masked date is a small loss, a leaked address is not.
"""

from __future__ import annotations

import re

# Order matters: the longer, more specific patterns run first, so a card number is not
# half-masked as a phone number.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "EMAIL",
        re.compile(
            r"[A-Za-z0-9._%+-]+\s?(?:@|\(at\)|\[at\])\s?"  # local part, "@" or an obfuscated " (at) "
            r"[A-Za-z0-9-]+(?:\s?(?:\.|\(dot\)|\[dot\])\s?[A-Za-z0-9-]+)+"  # domain labels
        ),
    ),
    ("CARD", re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")),
    ("SSN", re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")),
    ("PHONE", re.compile(r"(?<![\w])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\d)")),
    ("IP", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")),
)


def redact(text: str) -> str:
    """Replace e-mail addresses, card, social security and phone numbers and IP addresses with tags."""
    for tag, pattern in _PATTERNS:
        text = pattern.sub(f"[{tag}]", text)
    return text
