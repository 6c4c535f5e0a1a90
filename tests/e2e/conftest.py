"""Fixtures of the end-to-end tests: a real ``mlflow server`` on loopback."""

from __future__ import annotations

import pytest
from e2e_helpers import MlflowServer


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1; yields its URL, always stopped afterwards."""
    server = MlflowServer(tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()
