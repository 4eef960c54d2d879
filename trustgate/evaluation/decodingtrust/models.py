"""The models whose generations DecodingTrust's authors stored, and how its file names spell them."""

from __future__ import annotations

from dataclasses import dataclass

from trustgate.util.errors import TrustgateError


@dataclass(frozen=True)
class StoredModel:
    name: str  # as DecodingTrust's file names write it: gpt-4-0314, Llama-2-7b-chat-hf
    org: str  # the stereotype generations folder (openai, meta-llama, ...)
    short: str | None = None  # the OOD file names' short form (gpt4), for the OpenAI models

    @property
    def tokens(self) -> tuple[str, ...]:
        """The spellings to try in a file name, DecodingTrust's most common first."""
        return (self.short, self.name) if self.short else (self.name,)


MODELS = (
    StoredModel("gpt-3.5-turbo-0301", "openai", "gpt3.5"),
    StoredModel("gpt-4-0314", "openai", "gpt4"),
    # Stereotype generations only:
    StoredModel("alpaca-native", "chavinlo"),
    StoredModel("vicuna-7b-v1.3", "lmsys"),
    StoredModel("Llama-2-7b-chat-hf", "meta-llama"),
    StoredModel("mpt-7b-chat", "mosaicml"),
    StoredModel("falcon-7b-instruct", "tiiuae"),
    StoredModel("RedPajama-INCITE-7B-Instruct", "together"),
)


def lookup_model(name: str) -> StoredModel:
    """The stored model called `name` (bare, `openai/gpt-4-0314` or a hub id); a clear error if unknown."""
    for model in MODELS:
        if name in (model.name, f"{model.org}/{model.name}") or name.endswith(f"/{model.name}"):
            return model
    raise TrustgateError(
        f"--dt-model {name}",
        "not a model whose generations DecodingTrust stored",
        "use one of " + ", ".join(model.name for model in MODELS),
    )
