"""Log a simulated study over HTTP with the analysis tests' helper (shared with e2e tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from analysis_mlflow_helpers import log_table_as_study  # noqa: E402

from capstudy.analysis.simulate import simulate_study_table  # noqa: E402


def log_simulated(url: str, rng: np.random.Generator, study: str = "browser") -> str:
    """A simulated 8-variant study as trial runs in ``url``; returns its experiment id."""
    client = MlflowClient(url)
    log_table_as_study(client, simulate_study_table(rng, n_seeds=2), study)
    return client.get_experiment_by_name(study).experiment_id
