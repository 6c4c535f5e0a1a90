"""Shared test fixtures: every test gets its own capstudy home, so nothing leaks."""

from __future__ import annotations

import os

import pytest

# Ray and MLflow print telemetry hints and try to reach the network; keep tests offline.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(autouse=True)
def capstudy_home(tmp_path_factory, monkeypatch):
    """Point CAPSTUDY_HOME at a fresh folder for each test (data, cache, mlflow.db)."""
    home = tmp_path_factory.mktemp("capstudy_home")
    monkeypatch.setenv("CAPSTUDY_HOME", str(home))
    for var in ("CAPSTUDY_DATA", "CAPSTUDY_CACHE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    return home
