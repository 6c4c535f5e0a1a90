#!/usr/bin/env bash
# Remake the figure on README.md and the docs' home page: `capstudy analyze` on a synthetic
# study table with a known threshold (simulated: it says nothing about FLIR or LLVIP).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
work=$(mktemp -d)
.venv/bin/python - "$work/synthetic.csv" <<'PY'
import sys

import numpy as np

from capstudy.analysis.simulate import simulate_study_table

# One family, three inits, 5 seeds, in-domain and RGB -> thermal; a hinge at 100 k parameters.
table = simulate_study_table(
    np.random.default_rng(3), slope=0.15, n_seeds=5, inits=("random", "imagenet", "imagenet_coco")
)
table.to_csv(sys.argv[1], index=False)
PY
.venv/bin/capstudy analyze --from "$work/synthetic.csv" --find-threshold --no-mlflow \
  --out "$work/analysis"
cp "$work/analysis/paper/figure1.png" docs/figures/synthetic-figure1.png
echo "wrote docs/figures/synthetic-figure1.png"
