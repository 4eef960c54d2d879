"""The dimensions: one module per trust dimension, each defining `DIMENSION`.

`all_dimensions()` finds them with pkgutil, so a new module appears without edits here. It
imports lazily (on first call), keeping `import trustgate.dimensions` cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from trustgate.dimension import Dimension


@cache
def all_dimensions() -> dict[str, Dimension]:
    """Dimension name -> Dimension, for every trustgate/dimensions/<name>.py that defines DIMENSION."""
    found: dict[str, Dimension] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.ispkg or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        dimension = getattr(module, "DIMENSION", None)
        if isinstance(dimension, Dimension):
            if dimension.name in found:
                raise ValueError(f"two modules define dimension {dimension.name!r}")
            found[dimension.name] = dimension
    return dict(sorted(found.items()))


def get_dimension(name: str) -> Dimension:
    """One dimension by name; KeyError naming the known ones."""
    dimensions = all_dimensions()
    if name not in dimensions:
        raise KeyError(f"unknown dimension {name!r}; known: {', '.join(dimensions)}")
    return dimensions[name]
