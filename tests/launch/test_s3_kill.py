"""A study whose storage is an S3 bucket (a real S3 protocol server) survives its driver
being SIGKILLed: ``--resume`` from the bucket ends with the uninterrupted run's results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from s3server import BUCKET, study_text

from capstudy import keys
from capstudy.launch.scripted import EPOCH_SECONDS_ENV, RUNGS_ENV
from capstudy.storage import place
from capstudy.util import mlflow_client

pytestmark = pytest.mark.slow
# One trial at a time: ASHA sees results in one order, so two runs decide alike.
DRIVER = (
    "import sys\n"
    "from capstudy.launch.driver import LaunchOptions, launch\n"
    "from capstudy.launch.scripted import scripted_trainable\n"
    "opts = LaunchOptions(space=sys.argv[1], storage=sys.argv[2], resume=sys.argv[3] == '1',"
    " max_concurrent=1)\n"
    "launch(opts, trainable_fn=scripted_trainable)\n"
)


def _driver(home: Path, space: Path, storage: str, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "CAPSTUDY_HOME": str(home), EPOCH_SECONDS_ENV: "0.5", RUNGS_ENV: "1,2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [sys.executable, "-c", DRIVER, str(space), storage, "1" if resume else "0"]
    log = (home / f"launch-{int(resume)}.log").open("w")
    return subprocess.Popen(
        args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _results(home: Path) -> dict[str, tuple]:
    """Trial key -> (run status, last epoch, last val/map50), read from the home's store."""
    client = mlflow_client(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("s3kill")
    runs = client.search_runs([exp.experiment_id], f"tags.`{keys.T_KIND}` = 'trial'")
    out = {}
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "val/map50")
        last = max(history, key=lambda m: m.step, default=None)  # None: opened, no epoch yet
        step, value = (last.step, round(last.value, 9)) if last else (0, None)
        out[run.data.tags[keys.T_TRIAL_ID]] = (run.info.status, step, value)
    assert len(out) == len(runs), "a trial has two runs"
    return out


def _uri(endpoint: str) -> str:
    return f"s3://{BUCKET}/ray-{uuid.uuid4().hex[:8]}?endpoint_override={endpoint}&scheme=http"


def test_a_sigkilled_driver_resumes_from_the_bucket(s3_endpoint, tmp_path):
    space = tmp_path / "s3kill.yaml"
    space.write_text(study_text("s3kill", cpu=1))
    homes = {name: tmp_path / name for name in ("straight", "killed")}
    for home in homes.values():
        home.mkdir()
    straight = _driver(homes["straight"], space, _uri(s3_endpoint), resume=False)
    assert straight.wait(timeout=300) == 0, (homes["straight"] / "launch-0.log").read_text()

    storage = _uri(s3_endpoint)
    asha = place(storage) / "s3kill.asha.json"  # written once a rung has recorded a trial
    driver = _driver(homes["killed"], space, storage, resume=False)
    try:
        deadline = time.monotonic() + 300
        while not asha.exists():
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(2)  # mid-trial, mid-upload: anywhere
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver, its Ray and its trials at once
        driver.wait()
    before = _results(homes["killed"])
    assert len(before) < 6 or any(s != "FINISHED" for s, *_ in before.values()), before

    resumed = _driver(homes["killed"], space, storage, resume=True)
    assert resumed.wait(timeout=300) == 0, (homes["killed"] / "launch-1.log").read_text()
    assert _results(homes["killed"]) == _results(homes["straight"])
