"""Shared fixtures for trustgate's own tests: cache root, tiny random Llama, gate runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.ci_progress"]  # a progress line every 30 s in a CI log

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "decodingtrust"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TRUSTGATE_CACHE when set (CI shares the converted embedded model), else a fresh folder."""
    explicit = os.environ.get("TRUSTGATE_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("trustgate-cache")


@pytest.fixture(scope="session")
def embedded_model_dir(cache_root: Path) -> Path:
    from trustgate.models import embedded_base_model

    return embedded_base_model(cache_root)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> Path:
    """A randomly initialised two-layer Llama with the embedded model's tokenizer and template.

    Width 96 (group size 32 under the power-of-two rule) and MLP width 256 (group size 128).
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=96,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@dataclass
class GateRun:
    returncode: int
    output: str
    report_dir: Path


@pytest.fixture
def run_gate(tmp_path: Path, cache_root: Path):
    """Run the real gate (`pytest trust_tests ...`) in a subprocess, as a user would."""

    def run(*args: str, timeout: int = 900) -> GateRun:
        report_dir = tmp_path / "report"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "trust_tests",
            "-p",
            "no:cacheprovider",
            "-q",
            "--trust-cache-dir",
            str(cache_root),
            "--trust-report",
            str(report_dir),
            *args,
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRUSTGATE_CACHE": str(cache_root)}
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        return GateRun(done.returncode, done.stdout + done.stderr, report_dir)

    return run
