"""The trust dimensions: one module per dimension, each declaring `DIMENSION`, and the registry
(`registry.py`), the one list of their names, titles, radar labels and pytest markers.
`base.py` holds what a dimension is made of (Dimension, Item, Outcome, ScenarioData)."""

from trustgate.dimensions.registry import NAMES, all_dimensions, get_dimension

__all__ = ["NAMES", "all_dimensions", "get_dimension"]
