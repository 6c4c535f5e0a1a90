"""Faults a real cluster meets, injected for real (a SIGKILLed driver, a truncated file, a full
disk), and what a study does about them: it finishes, and nothing damaged is taken as good."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import HERE, capstudy, run_rows
from mounts import tmpfs

from capstudy import keys, tracking

pytestmark = pytest.mark.slow
STUDY = HERE / "faults.yaml"


def _driver(home: Path, log: Path, *more: str) -> subprocess.Popen:
    """``capstudy launch`` of the faults study, in its own session (to be SIGKILLed whole)."""
    env = {**os.environ, "CAPSTUDY_HOME": str(home), "CAPSTUDY_SYNTH_SCALE": "0.15"}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [sys.executable, "-m", "capstudy.cli.main", "launch", "--space", str(STUDY), *more]
    with log.open("w") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for(what, driver: subprocess.Popen, log: Path, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if driver.poll() is not None:
            pytest.fail(f"the launch ended first:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _trial_folder(storage: Path) -> Path | None:
    found = [p for p in (storage / "faults").glob("*-s0") if p.is_dir()]
    return found[0] if found else None


def _checkpoints(trial: Path | None) -> list[Path]:
    return sorted(trial.glob("checkpoint_*")) if trial is not None else []


def _named_checkpoint(home: Path) -> Path | None:
    """The checkpoint the study's saved Ray state names for its trial (None: none yet)."""
    from ray import tune

    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # "no result.json yet", each poll
    try:
        (trial,) = tune.ExperimentAnalysis(str(home / "ray_results" / "faults")).trials
    except Exception:  # not written yet, or being replaced
        return None
    return Path(trial.checkpoint.path) if trial.checkpoint is not None else None


def _trial_run(home: Path):
    uri = f"sqlite:///{home / 'mlflow.db'}"
    (run,) = tracking.find_runs("faults", f"tags.`{keys.T_KIND}` = 'trial'", uri)
    return run, uri


def test_a_truncated_checkpoint_is_skipped_on_resume(tmp_path):
    """SIGKILL the driver mid-trial, truncate the checkpoint its saved state names (as a copy
    cut short would leave it), resume: the trial falls back to the checkpoint before, warns
    naming the damaged one, and finishes."""
    log = tmp_path / "launch.log"
    driver = _driver(tmp_path, log)
    try:
        # Ray's saved state names a checkpoint with one before it (the fallback).
        _wait_for(
            lambda: (_named_checkpoint(tmp_path) or Path("_0")).name > "checkpoint_000000",
            driver,
            log,
        )
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    named = _named_checkpoint(tmp_path)
    damaged = named / "checkpoint.pt"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    older = [p for p in _checkpoints(named.parent) if p.name < named.name]
    outcome = f"resumed from {older[-1].name}" if older else "restarted from scratch"

    resumed = capstudy(["launch", "--space", str(STUDY), "--resume"], tmp_path, timeout=600)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert "warning: trial" in out and str(damaged) in out, out[-3000:]
    assert "does not match the sha256" in out and outcome in out, out[-3000:]
    run, uri = _trial_run(tmp_path)
    assert run.info.status == "FINISHED"
    history = tracking.client(uri).get_metric_history(run.info.run_id, "val/map50")
    assert sorted({m.step for m in history}) == list(range(1, 31))  # every epoch
    assert outcome in run.data.tags[keys.T_CHECKPOINT_DAMAGED]
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB filesystem for the study's storage."""
    with tmpfs(tmp_path / "disk", "size=16m") as disk:
        yield disk


def test_a_full_storage_stops_the_study_clearly_and_resume_finishes_it(tmp_path, small_disk):
    """Fill the study's storage mid-training (less room left than one checkpoint): the launch
    ends with an error naming the storage and the fix, no run is left RUNNING, the state file
    is the last whole one; once the space is back, --resume finishes the study."""
    storage = small_disk / "ray_results"
    log = tmp_path / "launch.log"
    driver = _driver(tmp_path, log, "--storage", str(storage))
    ballast = small_disk / "ballast"
    try:
        _wait_for(lambda: len(_checkpoints(_trial_folder(storage))) >= 2, driver, log)
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        with ballast.open("wb") as out:  # a real file: the disk is really full
            out.write(b"\0" * (free - 100_000))
        assert driver.wait(timeout=300) == 2, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    out = log.read_text()
    error = out[out.rindex("error: ") :]
    assert f"cannot write to the study's storage {storage / 'faults'}" in error, out[-3000:]
    assert "No space left on device. Free space there" in error
    assert f"capstudy launch --space {STUDY} --storage {storage} --resume" in error
    state = json.loads((storage / "faults" / "capstudy_study.json").read_text())  # whole
    assert state["study"] == "faults"
    statuses = {s for _, s, _ in run_rows(tmp_path, "trial") + run_rows(tmp_path, "study")}
    assert "RUNNING" not in statuses, statuses

    ballast.unlink()  # the space is back
    args = ["launch", "--space", str(STUDY), "--resume", "--storage", str(storage)]
    resumed = capstudy(args, tmp_path, timeout=600)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    run, uri = _trial_run(tmp_path)
    assert run.info.status == "FINISHED"
    history = tracking.client(uri).get_metric_history(run.info.run_id, "val/map50")
    assert sorted({m.step for m in history}) == list(range(1, 31))
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]
