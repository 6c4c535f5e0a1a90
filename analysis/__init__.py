"""Analysis of capacity studies: results table, selection, gains, threshold fits, reports.

Installed as ``capstudy.analysis`` (see pyproject's package-dir). It runs on a laptop: it
imports neither torch nor ray, and from capstudy only pure modules (keys, paths, errors).
MLflow API names live in one module, :mod:`capstudy.analysis.mlflow_io`.
"""

import os

# Figures are written to files only and never need a display: the headless backend, chosen
# before any analysis module imports pyplot (a backend already chosen by the caller stays).
os.environ.setdefault("MPLBACKEND", "Agg")
