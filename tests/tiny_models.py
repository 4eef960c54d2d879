"""Tiny randomly initialised decoders (no download) and the one-prompt-at-a-time reference that
the batched engine must reproduce token for token."""

from __future__ import annotations

from typing import Any

import torch

VOCAB = 96
NEVER = VOCAB + 1  # a stop id no model here can produce

_CLASSES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
}


def tiny_causal_lm(model_type: str = "llama", **overrides: Any) -> Any:
    """2 layers, 4 query heads over 2 KV heads of width 8, seeded weights, eval mode."""
    import transformers

    config_class, model_class = (getattr(transformers, name) for name in _CLASSES[model_type])
    settings: dict[str, Any] = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=3,
        pad_token_id=0,
    )
    if model_type == "mistral":
        settings["sliding_window"] = None
    settings.update(overrides)
    torch.manual_seed(0)
    return model_class(config_class(**settings)).eval()


def generate_alone(model: Any, prompt: list[int], new_tokens: int, stop: int) -> list[int]:
    """Greedy `model.generate` on one prompt, new tokens up to (without) the stop token."""
    output = model.generate(
        torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=stop, pad_token_id=0
    )
    tokens = output[0, len(prompt) :].tolist()
    return tokens[: tokens.index(stop)] if stop in tokens else tokens
