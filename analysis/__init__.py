"""Analysis of capacity studies: results table, selection, gains, threshold fits, reports.

Installed as ``capstudy.analysis`` (see pyproject's package-dir). It runs on a laptop: it
imports neither torch nor ray, and from capstudy only pure modules (keys, paths, errors).
MLflow API names live in one module, :mod:`capstudy.analysis.mlflow_io`.
"""
