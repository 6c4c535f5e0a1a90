"""A study tracked by a real ``mlflow server`` over HTTP (the cluster set-up), not SQLite."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import HERE, MlflowServer, capstudy, run_rows

from capstudy import keys

pytestmark = pytest.mark.slow
BENCH = HERE.parents[1] / "benchmarks" / "full_grid_shape.py"


def test_tiny_launch_against_an_mlflow_server(mlflow_server, tmp_path):
    home = tmp_path / "home"
    args = ["launch", "--space", str(HERE / "tiny.yaml"), "--tracking-uri", mlflow_server]
    proc = capstudy(args, home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The server's own store (tmp_path/mlflow.db) holds everything; nothing went local.
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]
    trials = run_rows(tmp_path, "trial")
    assert sorted(s for _, s, _ in trials) == ["FINISHED"] * 4
    assert not (home / "mlflow.db").exists()
    # Final models were uploaded through the server into its artifact root.
    models = list((tmp_path / "artifacts").rglob("MLmodel"))
    assert len(models) == 4, models

    out = tmp_path / "analysis"
    analyze = ["analyze", "--study", "tiny", "--tracking-uri", mlflow_server, "--out", str(out)]
    analyzed = capstudy(analyze, home)
    assert analyzed.returncode == 0, analyzed.stdout[-3000:] + analyzed.stderr[-3000:]
    assert [s for _, s, _ in run_rows(tmp_path, "analysis")] == ["FINISHED"]


OUTAGE_STUDY = """
study: {name: outage, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 20}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [0, -7]}
  init: {grid_search: [random]}
  train: {grid_search: [flir/rgb]}
  seed: {grid_search: [0, 1]}
  lr: {loguniform: [3.0e-4, 1.0e-2]}
evaluate: [flir/rgb, flir/ir, llvip/rgb, llvip/ir]
tune: {samples_per_cell: 4, search: random, asha: {grace: 2, reduction: 3, scope: cell}}
resources: {cpu: 0.25, gpu: 0}
"""


def _metric_steps(db: Path, key: str = "val/map50") -> dict[str, list[int]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            """select t.value, m.step from metrics m
               join tags t on t.run_uuid = m.run_uuid and t.key = ?
               where m.key = ?""",
            (keys.T_TRIAL_ID, key),
        ).fetchall()
    finally:
        con.close()
    steps: dict[str, list[int]] = {}
    for trial, step in rows:
        steps.setdefault(trial, []).append(step)
    return {trial: sorted(s) for trial, s in steps.items()}


def test_a_tracking_server_down_for_60_s_loses_no_metric(tmp_path):
    """Stop the server mid-study for 60 s: trials keep reporting, every metric lands once."""
    server = MlflowServer(tmp_path)
    url = server.start()
    space = tmp_path / "outage.yaml"
    space.write_text(OUTAGE_STUDY)
    home = tmp_path / "home"
    env = {
        **os.environ,
        "CAPSTUDY_HOME": str(home),
        "MLFLOW_TRACKING_URI": url,
        "SCRIPTED_EPOCH_SECONDS": "3",
        "SCRIPTED_RUNGS": "2,6,18",
    }
    cmd = [sys.executable, str(BENCH), "--drive", "--space", str(space)]
    driver = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not _metric_steps(tmp_path / "mlflow.db") and time.monotonic() < deadline:
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            time.sleep(1)
        server.stop()
        down_from = time.time()
        time.sleep(60)
        down_to = time.time()
        assert driver.poll() is None, "the study ended during the outage; make it longer"
        server.start()
        out, _ = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        server.stop()
    assert driver.returncode == 0, out[-4000:]
    # Ray's own per-trial result log is the truth of what the trials reported.
    reported: dict[str, list[int]] = {}
    during_outage = 0
    for log in (home / "ray_results" / "outage").glob("*/result.json"):
        results = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        reported[log.parent.name] = sorted(int(r["epoch"]) for r in results)
        during_outage += sum(down_from < r["timestamp"] < down_to for r in results)
    assert len(reported) == 16  # 4 cells x 4 samples
    assert during_outage > 0  # trials kept training and reporting while the store was down
    assert _metric_steps(tmp_path / "mlflow.db") == reported  # every metric, exactly once
    statuses = {s for _, s, _ in run_rows(tmp_path, "trial")}
    assert statuses == {"FINISHED"}
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]
