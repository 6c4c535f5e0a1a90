"""Fixtures for analysis tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A fresh SQLite tracking store in the test's temporary folder."""
    return f"sqlite:///{tmp_path}/mlflow.db"
