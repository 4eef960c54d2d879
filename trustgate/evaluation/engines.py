"""Engine factories: `--trust-engine` and its settings -> one engine per model handle.

Each factory imports its engine when it makes one, so choosing an engine costs nothing until a
model must render or generate.
"""

from __future__ import annotations

from collections.abc import Callable

from trustgate.engine import Engine
from trustgate.evaluation.profiles import EvaluationSettings
from trustgate.models import ModelHandle
from trustgate.util.errors import TrustgateError

EngineFactory = Callable[[ModelHandle], Engine]


def transformers_engines(settings: EvaluationSettings) -> EngineFactory:
    """The default engine factory: a transformers engine per model on the run's device."""

    def make(handle: ModelHandle) -> Engine:
        from trustgate.engine.transformers import TransformersEngine
        from trustgate.models import select_device

        return TransformersEngine(
            handle,
            device=select_device(settings.device),
            batch_size=settings.generation_batch_size,
            trust_remote_code=settings.trust_remote_code,
        )

    return make


def vllm_engines(settings: EvaluationSettings) -> EngineFactory:
    """A vLLM server per model, started when it must generate; its log under the report folder.
    Under xdist each worker starts its own servers, on its own GPU (select_device)."""

    def make(handle: ModelHandle) -> Engine:
        from trustgate.engine.vllm import VLLMEngine
        from trustgate.models import select_device

        engine = settings.engine
        assert engine.vllm_python is not None
        return VLLMEngine(
            handle,
            python=engine.vllm_python,
            device=select_device(settings.device),
            log_dir=settings.report_dir / "logs",
            max_model_len=engine.max_model_len,
            tensor_parallel_size=engine.tensor_parallel_size,
            pipeline_parallel_size=engine.pipeline_parallel_size,
            concurrency=settings.generation_batch_size,
            trust_remote_code=settings.trust_remote_code,
        )

    return make


def openai_engines(settings: EvaluationSettings) -> EngineFactory:
    """The endpoint given for each model; one endpoint never stands for two checkpoints (the
    cache would file one model's texts under the other's weights)."""
    served: dict[str, ModelHandle] = {}

    def make(handle: ModelHandle) -> Engine:
        from trustgate.engine.openai import OpenAIEngine

        url = settings.engine.url_for(handle.name)
        if url is None:
            raise TrustgateError(
                "--trust-engine openai", f"no --trust-engine-url for {handle.name}", "pass --trust-engine-url MODEL=URL"
            )
        other = served.setdefault(url, handle)
        if other.fingerprint != handle.fingerprint:
            raise TrustgateError(
                f"--trust-engine-url {url}",
                f"given for both {other.name} and {handle.name}, two different checkpoints",
                f"serve each at its own endpoint: --trust-engine-url {other.name}=URL1 "
                f"--trust-engine-url {handle.name}=URL2",
            )
        return OpenAIEngine(
            handle, url, concurrency=settings.generation_batch_size, trust_remote_code=settings.trust_remote_code
        )

    return make


FACTORIES = {"transformers": transformers_engines, "vllm": vllm_engines, "openai": openai_engines}


def engines_for(settings: EvaluationSettings) -> EngineFactory:
    """The factory of the run's `--trust-engine`."""
    return FACTORIES[settings.engine.name](settings)
