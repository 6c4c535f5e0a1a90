#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install capstudy
# with its test tools. Idempotent: re-running after pyproject.toml changes reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${CAPSTUDY_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.capstudy-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing torch, torchvision and capstudy[dev] into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch/torchvision first and pinned: an unpinned resolve would pull the newest CUDA build.
  "$VENV/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
