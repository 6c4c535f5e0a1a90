"""A sequential study end to end: two looks, a SIGKILL in the second, ``--resume``.

The real driver runs the scripted trainable (``benchmarks/full_grid_shape.py --drive``): the
boundaries are simulated before the first trial, look 1 decides "continue", the driver is
killed while look 2's trials run, and ``--resume`` finishes look 2 and decides "threshold"
without deciding look 1 again.
"""

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
from e2e_helpers import HERE, capstudy, run_rows

from capstudy import keys
from capstudy.launch.scripted import EPOCH_SECONDS_ENV

pytestmark = pytest.mark.slow
DRIVE = [sys.executable, str(HERE.parents[1] / "benchmarks" / "full_grid_shape.py"), "--drive"]
STUDY = HERE / "sequential.yaml"
PER_LOOK = 24


def _state(home: Path) -> dict:
    try:
        return json.loads((home / "ray_results" / "seq_tiny" / "capstudy_study.json").read_text())
    except (OSError, ValueError):
        return {}


def _parent_facts(home: Path) -> tuple[dict, list[tuple]]:
    """The parent run's tags and its sequential metric history (key, step, value)."""
    con = sqlite3.connect(home / "mlflow.db")
    try:
        (parent,) = [r for r, _, _ in run_rows(home, "study")]
        tags = dict(con.execute("select key, value from tags where run_uuid = ?", (parent,)))
        metrics = con.execute(
            "select key, step, value from metrics where run_uuid = ? and key like 'sequential/%'"
            " order by key, step",
            (parent,),
        ).fetchall()
        return tags, metrics
    finally:
        con.close()


def test_two_looks_killed_in_the_second_and_resumed(tmp_path):
    env = {**os.environ, "CAPSTUDY_HOME": str(tmp_path), EPOCH_SECONDS_ENV: "0.3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    driver = subprocess.Popen(
        [*DRIVE, "--space", str(STUDY)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state = _state(tmp_path)
            finished = (
                [r for r in run_rows(tmp_path, "trial") if r[1] == "FINISHED"] if state else []
            )
            # Look 2 is under way: look 1 decided, and some (not all) of look 2's trials ended.
            if state.get("look") == 2 and PER_LOOK + 2 <= len(finished) < 2 * PER_LOOK - 4:
                break
            assert driver.poll() is None, f"driver ended before the kill (state {state})"
            time.sleep(0.5)
        else:
            pytest.fail("look 2 did not get under way within 10 minutes")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()

    before = _state(tmp_path)
    assert [d["decision"] for d in before["looks"]] == ["continue"], before
    look1 = before["looks"][0]
    assert look1["p"] > look1["boundary_p"] and look1["p"] < before["boundaries"]["futility"]
    tags, _ = _parent_facts(tmp_path)
    assert tags[keys.T_SEQ_LOOK] == "1" and tags[keys.T_SEQ_DECISION] == "continue"
    assert json.loads(tags[keys.T_SEQ_BOUNDARIES]) == before["boundaries"]

    resumed = subprocess.run(
        [*DRIVE, "--space", str(STUDY), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    after = _state(tmp_path)
    # Look 1 was not decided again: the same record, the same boundaries, one p at step 1.
    assert after["looks"][0] == look1
    assert after["boundaries"] == before["boundaries"]
    assert [d["decision"] for d in after["looks"]] == ["continue", "threshold"]
    # Each look's record counts its trials, so the resumed launch reports both looks'.
    assert [d["trials_done"] for d in after["looks"]] == [PER_LOOK, PER_LOOK]
    (line,) = [x for x in resumed.stdout.splitlines() if x.startswith("DRIVER ")]
    assert json.loads(line.removeprefix("DRIVER "))["trials_done"] == 2 * PER_LOOK
    tags, metrics = _parent_facts(tmp_path)
    assert tags[keys.T_SEQ_LOOK] == "2" and tags[keys.T_SEQ_DECISION] == "threshold"
    p_history = [(step, value) for key, step, value in metrics if key == keys.M_SEQ_P]
    assert [step for step, _ in p_history] == [1, 2], metrics
    assert p_history[0][1] == pytest.approx(look1["p"])

    # Every trial of both looks ran exactly once, and nothing is left RUNNING.
    trials = run_rows(tmp_path, "trial")
    assert len({key for *_, key in trials}) == len(trials) == 2 * PER_LOOK
    assert {status for _, status, _ in trials} == {"FINISHED"}
    assert [status for _, status, _ in run_rows(tmp_path, "study")] == ["FINISHED"]

    status = capstudy(["status", "seq_tiny"], tmp_path)
    assert status.returncode == 0, status.stderr[-2000:]
    assert "look 1 (2 seeds)" in status.stdout and "-> continue" in status.stdout
    assert "look 2 (4 seeds)" in status.stdout and "-> threshold" in status.stdout
