"""An engine over an OpenAI-compatible HTTP endpoint (vLLM, SGLang, TGI), standard library only.

trustgate renders every prompt itself (`render`: the checkpoint's own chat template, exactly the
text the transformers engine and the generation cache see) and sends it to `/v1/completions`,
not `/v1/chat/completions`: one rendering path for every engine, cache keys on the exact prompt,
and no second copy of the template on the server that could differ (a server's default system
prompt, a tokenizer that adds BOS again). Requests go out concurrently, at most `concurrency` at
a time; a request that times out, is refused or gets a 5xx/429 is retried with backoff and, if it
still fails, reported per item (never dropped).

The cache key rests on the weights, never on a name: the engine runs only for a checkpoint
folder whose fingerprint trustgate took (`handle`); the endpoint must serve those weights.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from trustgate.engine.base import Decoding, Finished, Messages, Prompt, clean_text
from trustgate.models import ModelHandle
from trustgate.util.errors import TrustgateError
from trustgate.util.progress import Progress

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Sampling parameters vLLM reads beyond OpenAI's: every one at its neutral value, so the server's
# defaults (or a generation_config.json it applies) cannot change what greedy decoding returns.
VLLM_EXTRAS: dict[str, Any] = {
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "add_special_tokens": False,  # the rendered prompt already holds every special token
    "skip_special_tokens": True,
}


FIX_ENDPOINT = "start the server, or check the URL and that this machine can reach it"


class EndpointError(TrustgateError):
    """The endpoint does not answer, or refused a request (after the retries)."""


@dataclass
class HttpResult:
    status: int
    body: Any  # parsed JSON, or the raw text of a non-JSON answer
    error: str | None = None  # a transport failure (refused, timed out): no status


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> HttpResult:
    """GET (body None) or POST JSON; never raises for an HTTP or transport failure."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
        reason = getattr(exc, "reason", exc)
        timed_out = isinstance(reason, TimeoutError) or "timed out" in str(reason)
        return HttpResult(0, None, f"timed out after {timeout:g} s" if timed_out else f"no answer ({reason})")
    text = raw.decode("utf-8", errors="replace")
    try:
        return HttpResult(status, json.loads(text))
    except ValueError:
        return HttpResult(status, text)


def _message(result: HttpResult) -> str:
    if result.error:
        return result.error
    body = result.body
    if isinstance(body, dict):
        error = body.get("error", body.get("message", body))
        detail = error.get("message", error) if isinstance(error, dict) else error
    else:
        detail = body
    return f"HTTP {result.status}: {' '.join(str(detail).split())[:300]}"


@dataclass
class CompletionClient:
    """POSTs to `<base_url>/v1/completions`, `concurrency` requests at a time."""

    base_url: str
    concurrency: int = 32
    timeout: float = 600.0  # one request: a long prompt on a loaded CPU is slow
    retries: int = 3  # tries after the first
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    culprit: str = "--trust-engine-url"
    alive: Any = None  # () -> str | None: why the server is gone (checked between retries)
    failures: list[str] = field(default_factory=list)

    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The parsed answer, or None and why it failed after every retry."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            result = http_json(f"{self.base_url}/v1/completions", body, self.timeout)
            if result.status == 200 and isinstance(result.body, dict) and "choices" in result.body:
                return result.body, None
            retryable = result.error is not None or result.status in RETRYABLE_STATUS
            gone = self.alive() if self.alive else None
            if gone or not retryable or attempt == self.retries:
                why = _message(result) + (f" ({gone})" if gone else "")
                tries = attempt + 1
                return None, f"{why}, after {tries} {'try' if tries == 1 else 'tries'}"
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def complete(self, bodies: Sequence[dict[str, Any]], progress: Progress | None = None) -> list[dict[str, Any]]:
        """Every body's answer, in order; raises one EndpointError naming each failed item."""
        answers: list[dict[str, Any] | None] = [None] * len(bodies)
        errors: dict[int, str] = {}
        lock = threading.Lock()

        def one(index: int) -> None:
            answer, error = self.post(bodies[index])
            with lock:
                if error is None:
                    answers[index] = answer
                else:
                    errors[index] = error
                if progress:
                    progress.update(1)

        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(bodies)))) as pool:
            list(pool.map(one, range(len(bodies))))
        if errors:
            first = sorted(errors)[:3]
            listed = "; ".join(f"request {i + 1}: {errors[i]}" for i in first)
            more = f"; and {len(errors) - len(first)} more" if len(errors) > len(first) else ""
            self.failures.extend(errors.values())
            raise EndpointError(
                f"{self.culprit} {self.base_url}",
                f"{len(errors)} of {len(bodies)} requests failed ({listed}{more})",
                "check the server's log; the texts generated so far are cached and a rerun resumes",
            )
        return [a for a in answers if a is not None]


def completion_body(model: str, prompt: str, decoding: Decoding, extras: dict[str, Any]) -> dict[str, Any]:
    """One request: greedy, or sampled with a seed that depends on the prompt and the decoding
    only (not on the order or batch the prompt came in), so a rerun draws the same samples."""
    seed_text = prompt + json.dumps(asdict(decoding), sort_keys=True)
    seed = (int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16) + decoding.seed) % 2**31
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": decoding.max_new_tokens,
        "temperature": 0.0 if decoding.greedy else decoding.temperature,
        "top_p": 1.0,
        "n": decoding.samples,
        "seed": seed,
        "stream": False,
        **extras,
    }


def split_url(text: str) -> tuple[str, str | None]:
    """ "http://host:8000/v1#served-name" -> ("http://host:8000", "served-name")."""
    url, _, model = text.partition("#")
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TrustgateError(f"--trust-engine-url {text}", "not an http(s) URL", "pass e.g. http://127.0.0.1:8000")
    return url, model or None


class CompletionsEngine:
    """What the endpoint engines share: trustgate's rendering, the requests and their answers.
    A subclass sets `client`, `model` and `extras` in `load`."""

    name = "completions"
    commits_as_it_goes = False  # the generation cache sends chunks and commits each

    def __init__(self, handle: ModelHandle, trust_remote_code: bool = False) -> None:
        self.handle = handle
        self.trust_remote_code = trust_remote_code
        self.client: CompletionClient | None = None
        self.model: str | None = None
        self.extras: dict[str, Any] = {}
        self._tokenizer: Any = None
        self.generated_tokens = 0  # from the answers' usage (benchmarks read it)

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from trustgate.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.handle.path, self.trust_remote_code)
        return self._tokenizer

    def render(self, messages: Messages) -> str:
        from trustgate.engine.transformers import render_chat

        return render_chat(self.tokenizer, messages)

    def load(self) -> None:
        raise NotImplementedError

    def generate(
        self,
        prompts: Sequence[Prompt],
        decoding: Decoding,
        progress: Progress | None = None,
        finished: Finished | None = None,
    ) -> list[list[str]]:
        """Every prompt in one batch of requests; the generation cache commits in chunks."""
        self.load()
        assert self.client is not None and self.model is not None
        bodies = [completion_body(self.model, p.text, decoding, self.extras) for p in prompts]
        answers = self.client.complete(bodies, progress=progress)
        results: list[list[str]] = []
        for body, answer in zip(bodies, answers, strict=True):
            choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
            if len(choices) != decoding.samples:
                raise EndpointError(
                    f"{self.client.culprit} {self.client.base_url}",
                    f"asked for {decoding.samples} samples, got {len(choices)} (prompt {body['prompt'][:60]!r})",
                    "use a server that supports n > 1, or one sample per prompt",
                )
            results.append([clean_text(c.get("text") or "") for c in choices])
            # Counted like the transformers engine: without the stop token a finished choice ends on.
            stopped = sum(c.get("finish_reason") == "stop" for c in choices)
            self.generated_tokens += int((answer.get("usage") or {}).get("completion_tokens", 0)) - stopped
        return results


class OpenAIEngine(CompletionsEngine):
    """A model served by an endpoint trustgate does not manage; `handle` names its checkpoint
    (its tokenizer renders the prompts, its weights' fingerprint keys the cache)."""

    name = "openai"

    def __init__(
        self,
        handle: ModelHandle,
        url: str,
        concurrency: int = 32,
        trust_remote_code: bool = False,
        timeout: float = 600.0,
    ) -> None:
        if not handle.fingerprint:
            raise TrustgateError(
                f"--trust-engine-url {url}",
                f"no weights fingerprint for {handle.name}: generations would be cached under a name alone",
                "pass the checkpoint folder the endpoint serves (--trust-base-model/--model), "
                "so its weights key the cache",
            )
        super().__init__(handle, trust_remote_code)
        self.base_url, self.model = split_url(url)
        self.client = CompletionClient(self.base_url, concurrency=concurrency, timeout=timeout)
        self._server: str | None = None
        self.loaded = False

    def _probe(self) -> str:
        """The server's software and version ("vllm-0.32.0", "tgi-3.1.0-bfloat16"), asked once."""
        if self._server is None:
            version = http_json(f"{self.base_url}/version", timeout=10)
            info = http_json(f"{self.base_url}/info", timeout=10)
            if version.status == 200 and isinstance(version.body, dict) and "version" in version.body:
                self._server = f"vllm-{version.body['version']}"
                self.extras = dict(VLLM_EXTRAS)
            elif info.status == 200 and isinstance(info.body, dict) and "version" in info.body:
                self._server = f"tgi-{info.body['version']}-{info.body.get('model_dtype', 'unknown')}"
            elif version.error and info.error:
                raise EndpointError(
                    f"--trust-engine-url {self.base_url}",
                    f"the endpoint does not answer: {version.error}",
                    FIX_ENDPOINT,
                )
            else:
                self._server = "unknown"
        return self._server

    @property
    def backend(self) -> str:
        """The server (software, version) and the endpoint: two endpoints never share texts."""
        parts = urlsplit(self.base_url)
        return f"openai-{self._probe()}@{parts.netloc}{parts.path}"

    def load(self) -> None:
        if self.loaded:
            return
        self._probe()
        models = http_json(f"{self.base_url}/v1/models", timeout=30)
        if models.status != 200 or not isinstance(models.body, dict):
            raise EndpointError(
                f"--trust-engine-url {self.base_url}", f"GET /v1/models: {_message(models)}", FIX_ENDPOINT
            )
        served = [entry.get("id") for entry in models.body.get("data", []) if isinstance(entry, dict)]
        listed = ", ".join(map(str, served)) or "none"
        if self.model is None:
            if len(served) != 1:
                raise EndpointError(
                    f"--trust-engine-url {self.base_url}",
                    f"the endpoint serves {len(served)} models ({listed})",
                    "name the one for this checkpoint as URL#MODEL",
                )
            self.model = served[0]
        elif self.model not in served:
            raise EndpointError(
                f"--trust-engine-url {self.base_url}#{self.model}",
                f"the endpoint does not serve {self.model!r} (it serves {listed})",
                "name a served model after #",
            )
        self.loaded = True

    def release(self) -> None:
        self.loaded = False
