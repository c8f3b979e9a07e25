#!/usr/bin/env bash
# The test command: system packages for the real-server tests (PostgreSQL, headless Chromium)
# and the code sandbox (bubblewrap, libseccomp)
# where this machine can install them, the full environment, then ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
ldconfig -p 2>/dev/null | grep -q libseccomp.so.2 || need+=(libseccomp2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
      >/dev/null) || echo "note: could not install ${need[*]}; the tests that need them will skip"
  else
    echo "note: ${need[*]} not installed; the tests that need them will skip"
  fi
fi
bash scripts/setup.sh --full
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
# The example plugin (docs/PLUGINS.md): installed as a plugin author would, then its own tests,
# which call uisbench.testing.check_strategy (about 20 s).
.venv/bin/python -m pip install -q --no-deps -e examples/strategy-plugin
.venv/bin/python -m pytest -q -p no:cacheprovider examples/strategy-plugin/tests
# --executor ray on a local Ray cluster (loopback): its start-up is kept out of the main run.
.venv/bin/python -m pytest -q -m ray tests/cli/test_jobs.py
# The regression gate: the committed baseline's configurations, re-run with this code.
mkdir -p test-artifacts
.venv/bin/uisbench gate --baseline results/baselines/arith-smoke.json \
  --markdown test-artifacts/gate.md --junit test-artifacts/gate.xml
# Real vLLM on CPU (issue 14): its own environment, then the `serve` tests. A failed build fails
# the run here; a missing environment fails the tests (they never skip).
bash scripts/serve_env.sh
.venv/bin/python -m pytest -q -m serve tests/live/test_serve.py
