"""A pretraining stage whose process is lost mid-training (SIGKILLed by PID, as its node going
away) is rerun by Ray, the study finishes, and the lost attempt's run ends FAILED with its
cause, never left RUNNING."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import HERE, run_rows

from capstudy import keys

pytestmark = pytest.mark.slow

STUDY = HERE / "pretrained.yaml"
STAGE_TITLE = b"ray::_stage_task"  # the process title of a Ray worker running a stage


def _reported_epochs(db: Path) -> int:
    """Metric rows of pretraining runs so far (0 while the store is not there yet)."""
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=10)
    try:
        (count,) = con.execute(
            """select count(*) from metrics m join tags t on t.run_uuid = m.run_uuid
               where t.key = ? and t.value = ? and m.key = ?""",
            (keys.T_KIND, keys.KIND_PRETRAIN, keys.M_EPOCH),
        ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()
    return count


def _stage_processes(home: Path) -> list[int]:
    """PIDs of the Ray workers running a pretraining stage for this test's home."""
    needle = f"CAPSTUDY_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or STAGE_TITLE not in (proc / "cmdline").read_bytes():
                continue
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def test_a_lost_pretraining_stage_is_rerun_and_its_run_ends_failed(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "CAPSTUDY_HOME": str(home), "CAPSTUDY_SYNTH_SCALE": "0.15"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "launch.log"
    with log.open("w") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "capstudy.cli.main", "launch", "--space", str(STUDY)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while _reported_epochs(home / "mlflow.db") < 1:
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        (pid,) = _stage_processes(home)
        os.kill(pid, signal.SIGKILL)  # mid-stage: epoch 1 of 5 reported
        assert driver.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    out = log.read_text()
    assert "1 lost attempt(s) marked FAILED" in out, out[-3000:]

    con = sqlite3.connect(home / "mlflow.db")
    try:
        stages = con.execute(
            """select r.status, coalesce(e.value, '') from runs r
               join tags t on t.run_uuid = r.run_uuid and t.key = ? and t.value = ?
               left join tags e on e.run_uuid = r.run_uuid and e.key = ?
               order by r.start_time""",
            (keys.T_KIND, keys.KIND_PRETRAIN, keys.T_ERROR),
        ).fetchall()
    finally:
        con.close()
    # The lost attempt ended FAILED with its cause; Ray's rerun registered the weights.
    assert [status for status, _ in stages] == ["FAILED", "FINISHED"], stages
    assert stages[0][1].startswith("process or node lost: ")
    assert [s for _, s, _ in run_rows(home, "trial")] == ["FINISHED"]
    assert [s for _, s, _ in run_rows(home, "study")] == ["FINISHED"]
