"""A real two-node Ray cluster on this machine (``ray start`` twice) runs a study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import HERE, capstudy, free_port, run_rows

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def two_node_cluster(monkeypatch):
    # Ray 2.60: a multi-node `ray start` fails after ~20 s without token auth (DESIGN.md).
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    address = f"127.0.0.1:{free_port()}"
    port = address.split(":")[1]
    env = dict(os.environ)
    try:
        subprocess.run(
            [
                RAY,
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [RAY, "start", f"--address={address}", "--num-cpus=1"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _wait_for_nodes(address: str, count: int, timeout: float = 60) -> str:
    """``ray status`` output once ``count`` nodes are active (a worker registers late)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            [RAY, "status", "--address", address], capture_output=True, text=True, timeout=60
        ).stdout
        if out.count(" node_") >= count or time.monotonic() > deadline:
            return out
        time.sleep(2)


def test_study_runs_on_both_nodes(two_node_cluster, mlflow_server, tmp_path):
    status = _wait_for_nodes(two_node_cluster, 2)
    assert status.count(" node_") == 2, status
    home = tmp_path / "home"
    space = str(HERE / "tiny.yaml")
    # A SQLite store with --address is refused before anything starts (README, Scaling out).
    refused = capstudy(["launch", "--space", space, "--address", two_node_cluster], home)
    assert refused.returncode == 2
    assert "is a file on this machine" in refused.stderr and "mlflow server" in refused.stderr
    assert not (home / "ray_results").exists()

    args = [
        "launch",
        "--space",
        space,
        "--address",
        two_node_cluster,
        "--tracking-uri",
        mlflow_server,
        "--storage",
        str(tmp_path / "shared"),
    ]
    proc = capstudy(args, home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodes = set()
    for result in (tmp_path / "shared" / "tiny").glob("*/result.json"):
        nodes |= {json.loads(line)["_node_id"] for line in result.read_text().splitlines()}
    assert len(nodes) == 2, nodes  # one 1-CPU slot per node: both nodes must have run trials
    # The server's store (tmp_path/mlflow.db) holds every trial; nothing went to a local one.
    assert sorted(s for _, s, _ in run_rows(tmp_path, "trial")) == ["FINISHED"] * 4
    assert not (home / "mlflow.db").exists()
