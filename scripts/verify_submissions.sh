#!/usr/bin/env bash
# Verify every submitted result file in DIR (default results/submitted), as docs/SUBMITTING.md
# describes: install the plugin package NAME.package.txt names (a pip requirements file: each
# line a wheel, downloaded without its dependencies and read by `python -m uisbench.wheels`
# before anything of it is installed: it may add its own modules and nothing else), then
# `uisbench gate --verify` re-runs the file's configurations here, every strategy in its own
# process, on the shipped bank of the file's bank name or the bank NAME.bank.txt names, and
# writes NAME.verified.json beside it. Exits 1 if any file is not verified.
set -euo pipefail
dir=${1:-results/submitted}
py=${PYTHON:-python}
status=0
for f in "$dir"/*.json; do
  [ -e "$f" ] || continue
  case "$f" in *.verified.json) continue ;; esac
  stem=${f%.json}
  if [ -f "$stem.package.txt" ]; then
    wheels=$(mktemp -d)
    "$py" -m pip download -q --only-binary=:all: --no-deps -d "$wheels" -r "$stem.package.txt"
    if ! "$py" -m uisbench.wheels "$wheels"/*.whl; then
      echo "uisbench: $f not verified: its package would install more than its own modules" >&2
      status=1
      rm -rf "$wheels"
      continue
    fi
    "$py" -m pip install -q --no-index --no-deps "$wheels"/*.whl
    rm -rf "$wheels"
  fi
  bank=()
  if [ -f "$stem.bank.txt" ]; then
    bank=(--bank "$(head -n1 "$stem.bank.txt")")
  fi
  "$py" -m uisbench.cli gate --baseline "$f" "${bank[@]}" --verify || status=1
done
exit "$status"
