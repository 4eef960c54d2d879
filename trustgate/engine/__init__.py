"""Generation: the Engine protocol (render, generate, its own backend id), the transformers
engine with batched shared-prefix decoding, and the generation cache that keys every text by
(weights fingerprint, rendered prompt, decoding settings, backend)."""

from trustgate.engine.base import Decoding, Engine, Prompt, clean_text

__all__ = ["Decoding", "Engine", "Prompt", "clean_text"]
