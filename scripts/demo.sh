#!/usr/bin/env bash
# Install everything into .venv and run the main job on the embedded synthetic benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export RAY_USAGE_STATS_ENABLED=0
.venv/bin/capstudy models
