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


def _ray_start(args: list[str], env: dict) -> None:
    subprocess.run([RAY, "start", *args], env=env, check=True, capture_output=True, timeout=120)


@pytest.fixture
def two_node_cluster(tmp_path, monkeypatch):
    """Two `ray start` nodes, each with its own CAPSTUDY_HOME (node-local caches, locks and
    fingerprint records), reading the datasets from one shared folder (docs: Scaling out)."""
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
        _ray_start(
            ["--head", f"--port={address.split(':')[1]}", "--num-cpus=1"]
            + ["--include-dashboard=false", "--disable-usage-stats"],
            {**base, "CAPSTUDY_HOME": str(homes["head"])},
        )
        _ray_start(
            [f"--address={address}", "--num-cpus=1"],
            {**base, "CAPSTUDY_HOME": str(homes["worker"])},
        )
        yield address, homes
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


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


def _records(home: Path) -> dict[str, int]:
    """A node's fingerprint records: split -> times the node listed it."""
    out = {}
    for path in (home / "cache" / "fingerprints").glob("*.json"):
        record = json.loads(path.read_text())
        out[f"{Path(record['root']).name} {record['split']} {record['modality']}"] = record[
            "listings"
        ]
    return out


def test_study_runs_on_both_nodes(two_node_cluster, mlflow_server, tmp_path):
    address, homes = two_node_cluster
    status = _wait_for_nodes(address, 2)
    assert status.count(" node_") == 2, status
    home = tmp_path / "driver"  # the driver's machine has no data and is not a node
    space = str(HERE / "cluster.yaml")
    # A SQLite store with --address is refused before anything starts (docs/guide/scaling-out.md).
    refused = capstudy(["launch", "--space", space, "--address", address], home)
    assert refused.returncode == 2
    assert "is a file on this machine" in refused.stderr and "mlflow server" in refused.stderr
    assert not (home / "ray_results").exists()

    shared = tmp_path / "shared" / "ray_results"
    args = ["launch", "--space", space, "--address", address]
    args += ["--tracking-uri", mlflow_server, "--storage", str(shared)]
    proc = capstudy(args, home, synth_scale=None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodes = set()
    for result in (shared / "cluster").glob("*/result.json"):
        nodes |= {json.loads(line)["_node_id"] for line in result.read_text().splitlines()}
    assert len(nodes) == 2, nodes  # one 1-CPU slot per node: both nodes must have run trials
    # The server's store (tmp_path/mlflow.db) holds every trial and the pretraining run;
    # nothing went to a local store.
    assert sorted(s for _, s, _ in run_rows(tmp_path, "trial")) == ["FINISHED"] * 4
    assert [s for _, s, _ in run_rows(tmp_path, "pretrain")] == ["FINISHED"]
    assert not (home / "mlflow.db").exists()
    # The driver read no data: no dataset folder, no fingerprint record, no cache.
    assert not (home / "data").exists() and not (home / "cache").exists()

    # Every node checked and fingerprinted the data it trains on, listing each split once.
    first = {name: _records(h) for name, h in homes.items()}
    splits = {
        "synth_a train rgb",
        "synth_a eval rgb",
        "synth_a eval ir",
        "synth_imagenet train rgb",
        "synth_imagenet eval rgb",
    }
    for name, records in first.items():
        assert set(records) == splits, (name, records)
    # A resume (here of a finished study) probes again: no node lists a split again.
    resumed = capstudy([*args, "--resume"], home, synth_scale=None)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    for name, h in homes.items():
        assert _records(h) == dict.fromkeys(splits, 1), name
