"""Analysis of capacity studies: results table, selection, gains, threshold fits, reports.

Installed as ``capstudy.analysis`` (see pyproject's package-dir). It runs on a laptop: it
imports neither torch nor ray, and from capstudy only pure modules (keys, paths, errors).
MLflow API names live in one module, :mod:`capstudy.analysis.mlflow_io`.
"""

import os

# Figures are written to files only and never need a display: the headless backend, chosen
# before any analysis module imports pyplot (a backend already chosen by the caller stays).
os.environ.setdefault("MPLBACKEND", "Agg")

__all__ = ["analyze_study", "compare_studies"]


def __getattr__(name: str):
    # The one-call entry points, loaded on first use: importing a submodule (the power
    # analysis's workers, say) need not pay for pandas, matplotlib and MLflow through them.
    if name in __all__:
        from capstudy.analysis import api

        return getattr(api, name)
    raise AttributeError(f"module 'capstudy.analysis' has no attribute {name!r}")
