"""Fixtures of the end-to-end tests: a real ``mlflow server`` on loopback, and a real
two-node Ray cluster on this machine."""

from __future__ import annotations

import os

import pytest
from e2e_helpers import MlflowServer, capstudy, forget_cluster, free_port, kill_node, ray_start


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1; yields its URL, always stopped afterwards."""
    server = MlflowServer(tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def two_node_cluster(tmp_path, monkeypatch):
    """Two `ray start` nodes, each with its own CAPSTUDY_HOME (node-local caches, locks and
    fingerprint records), reading the datasets from one shared folder, as README says.

    Stopped by killing the two nodes' own processes by PID (never `ray stop`, which would stop
    every Ray instance on the machine), and forgetting the address `ray start` recorded.
    """
    # Ray 2.60: a multi-node `ray start` fails after ~20 s without token auth (DESIGN.md).
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    data = tmp_path / "shared" / "data"
    made = capstudy(
        ["data", "synth", "--root", str(data), "--only", "synth_a", "--only", "synth_imagenet"]
        + ["--scale", "0.15"],
        tmp_path / "writer",
    )
    assert made.returncode == 0, made.stderr[-2000:]
    address = f"127.0.0.1:{free_port()}"
    homes = {"head": tmp_path / "node-head", "worker": tmp_path / "node-worker"}
    base = {**os.environ, "CAPSTUDY_DATA": str(data)}
    base.pop("CAPSTUDY_SYNTH_SCALE", None)  # nodes must not generate data: it is shared
    try:
        ray_start(
            ["--head", f"--port={address.split(':')[1]}", "--num-cpus=1"]
            + ["--include-dashboard=false", "--disable-usage-stats"],
            {**base, "CAPSTUDY_HOME": str(homes["head"])},
        )
        ray_start(
            [f"--address={address}", "--num-cpus=1"],
            {**base, "CAPSTUDY_HOME": str(homes["worker"])},
        )
        yield address, homes
    finally:
        for home in (homes["worker"], homes["head"]):
            kill_node(home)
        forget_cluster(address)
