"""Search items and held-out items: each scenario's selection split by a salted hash of its
sample keys.

Repeated probing on the same items inflates false passes, so a remedy is searched on one part
and confirmed on the other. Within every scenario the sample keys are ordered by the salted
hash and the first share goes to the search, so both parts hold every scenario that has two
keys or more; the salt makes the split independent of the hashed order in which `--trust-limit`
selects and early stopping looks.
"""

from __future__ import annotations

import hashlib
import math

from trustgate.dimensions.base import Item

SALT = b"trustgate-remedy-split/1"


def _salted(key: str) -> bytes:
    return hashlib.sha256(SALT + key.encode()).digest()


def _search_keys(items: tuple[Item, ...], share: float) -> set[str]:
    keys = sorted(
        {item.sample_key or item.id for item in items}, key=lambda k: hashlib.sha256(SALT + k.encode()).digest()
    )
    return set(keys[: math.ceil(share * len(keys))])


def search_part(items: tuple[Item, ...], share: float = 0.5) -> tuple[Item, ...]:
    chosen = _search_keys(items, share)
    return tuple(item for item in items if (item.sample_key or item.id) in chosen)


def held_out_part(items: tuple[Item, ...], share: float = 0.5) -> tuple[Item, ...]:
    chosen = _search_keys(items, share)
    return tuple(item for item in items if (item.sample_key or item.id) not in chosen)
