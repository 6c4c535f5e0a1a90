#!/usr/bin/env bash
# Install everything into .venv and run the test suite (the command CI runs).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the end-to-end tests;
# .ci/run runs both suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest "$@"
