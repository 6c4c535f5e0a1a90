#!/usr/bin/env bash
# Install everything into .venv and run the main job on the embedded synthetic benchmark:
# the smoke study (pretraining + trials under Ray Tune, tracked in MLflow), then the
# analysis (gains, threshold fit, figures, report). State goes to $CAPSTUDY_HOME
# (default ~/.capstudy); the report to ./capstudy_out/smoke/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export RAY_USAGE_STATS_ENABLED=0
.venv/bin/capstudy launch --space smoke
.venv/bin/capstudy analyze --study smoke --find-threshold
echo
echo "Browse the runs: .venv/bin/mlflow ui --backend-store-uri sqlite:///${CAPSTUDY_HOME:-$HOME/.capstudy}/mlflow.db"
