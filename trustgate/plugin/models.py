"""The base model and the compressed variants of a run: the one place that calls `compressors/`."""

from __future__ import annotations

from collections.abc import Callable

from trustgate.models import ModelHandle, resolve_base_model, weights_fingerprint
from trustgate.plugin.repository import import_compressors
from trustgate.plugin.settings import Settings


def base_model_handle(settings: Settings) -> ModelHandle:
    path = resolve_base_model(settings.base_model, settings.evaluation.cache_root)
    return ModelHandle(name="dense", path=path, fingerprint=weights_fingerprint(path))


def variant_builder(settings: Settings, base: ModelHandle) -> Callable[[str], ModelHandle]:
    """variant name -> checkpoint handle, compressed on first use (cached on disk), once per name."""
    compressors = import_compressors()
    built: dict[str, ModelHandle] = {}
    specs = {spec.name: spec for spec in settings.variants}

    def build(name: str) -> ModelHandle:
        if name not in built:
            spec = specs.get(name) or compressors.parse_variant(name)
            built[name], _ = compressors.compressed_model(
                spec, base, settings.evaluation.cache_root, calibration_source=settings.calibration
            )
        return built[name]

    return build
