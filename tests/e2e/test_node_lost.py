"""A worker node lost mid-study (its Ray processes SIGKILLed by PID, as a preempted or
rebooted machine): the study finishes on the node left, the lost trial resumes from its last
checkpoint there, every run ends FINISHED once, and ``capstudy status`` counts the retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import HERE, capstudy, kill_node, run_rows, wait_for_nodes

pytestmark = pytest.mark.slow
STUDY = HERE / "node_lost.yaml"


def _rows(trial: Path) -> list[dict]:
    result = trial / "result.json"
    return [json.loads(line) for line in result.read_text().splitlines()] if result.exists() else []


def _checkpointed(storage: Path) -> bool:
    """Both trials are running and each has written two checkpoints."""
    trials = [p for p in (storage / "node_lost").glob("*-s0") if p.is_dir()]
    return len(trials) == 2 and all(len(list(t.glob("checkpoint_*"))) >= 2 for t in trials)


def test_a_lost_worker_node_costs_only_time(two_node_cluster, mlflow_server, tmp_path):
    address, homes = two_node_cluster
    assert wait_for_nodes(address, 2).count(" node_") == 2
    storage = tmp_path / "shared" / "ray_results"
    args = ["launch", "--space", str(STUDY), "--address", address]
    args += ["--tracking-uri", mlflow_server, "--storage", str(storage)]
    env = {**os.environ, "CAPSTUDY_HOME": str(tmp_path / "driver")}
    env.pop("CAPSTUDY_SYNTH_SCALE", None)
    log = tmp_path / "launch.log"
    with log.open("w") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "capstudy.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 400
        while not _checkpointed(storage):
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert kill_node(homes["worker"]), "no process of the worker node found"
        assert driver.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    out = log.read_text()

    # One trial ran on both nodes: after the loss it went on from a checkpoint, not epoch 1.
    moved = []
    for trial in (storage / "node_lost").glob("*-s0"):
        rows = _rows(trial)
        assert sorted({r["epoch"] for r in rows}) == list(range(1, 31)), trial.name
        nodes = [r["_node_id"] for r in rows]
        if len(set(nodes)) == 2:
            first_after = next(r for r in rows if r["_node_id"] != nodes[0])
            moved.append(first_after["epoch"])
    assert len(moved) == 1 and moved[0] > 1, (moved, out[-3000:])
    # Every trial run ended FINISHED, once; none is left RUNNING.
    trials = run_rows(tmp_path, "trial")
    assert sorted(s for _, s, _ in trials) == ["FINISHED", "FINISHED"], trials
    assert len({key for *_, key in trials}) == 2
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]

    status = capstudy(["status", "node_lost", "--tracking-uri", mlflow_server], tmp_path / "driver")
    assert status.returncode == 0, status.stderr[-2000:]
    assert "retries by cause" in status.stdout and "1 x process or node lost: " in status.stdout, (
        status.stdout
    )
