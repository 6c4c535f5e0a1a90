"""A study survives its driver being killed: --resume finishes it with no duplicate runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from e2e_helpers import HERE, capstudy, run_rows

from capstudy.launch.scripted import EPOCH_SECONDS_ENV

pytestmark = pytest.mark.slow


def test_tiny_launch_records_parent_and_children(tmp_path):
    proc = capstudy(["launch", "--space", str(HERE / "tiny.yaml")], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4/4 trials done" in proc.stdout
    parents = run_rows(tmp_path, "study")
    trials = run_rows(tmp_path, "trial")
    assert [status for _, status, _ in parents] == ["FINISHED"]
    assert sorted(status for _, status, _ in trials) == ["FINISHED"] * 4
    assert len({key for *_, key in trials}) == 4

    # The analysis reads the study back from the same store (2 capacities: no fit, a report).
    out = tmp_path / "analysis"
    analyzed = capstudy(
        ["analyze", "--study", "tiny", "--find-threshold", "--out", str(out)], tmp_path
    )
    assert analyzed.returncode == 0, analyzed.stdout[-3000:] + analyzed.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "tables" / "gains.csv").is_file()
    assert [s for _, s, _ in run_rows(tmp_path, "analysis")] == ["FINISHED"]


def test_resume_after_killed_driver(tmp_path):
    env = {**os.environ, "CAPSTUDY_HOME": str(tmp_path), "CAPSTUDY_SYNTH_SCALE": "0.15"}
    # Longer trials than tiny.yaml's (a second or two each with the batched step): the kill
    # must land while trials remain, and the store learns of a finished trial only when the
    # recorder's sink has written it, so all four could otherwise finish before the kill.
    study = tmp_path / "tiny.yaml"
    text = (HERE / "tiny.yaml").read_text()
    study.write_text(text.replace("epochs: 2,", "epochs: 8,").replace("images: 24,", "images: 96,"))
    assert study.read_text() != text
    args = [
        sys.executable,
        "-m",
        "capstudy.cli.main",
        "launch",
        "--space",
        str(study),
        "--max-concurrent",
        "1",
    ]
    driver = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if (tmp_path / "mlflow.db").exists() and any(
                status == "FINISHED" for _, status, _ in run_rows(tmp_path, "trial")
            ):
                break
            assert driver.poll() is None, "driver ended before it could be killed"
            time.sleep(1)
        else:
            pytest.fail("no trial finished within 10 minutes")
    finally:
        # SIGKILL the whole session: the driver gets no chance to clean up anything.
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = run_rows(tmp_path, "trial")
    assert 1 <= sum(s == "FINISHED" for _, s, _ in before) < 4

    resumed = capstudy(["launch", "--space", str(study), "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = run_rows(tmp_path, "trial")
    keys = [key for *_, key in after]
    assert len(keys) == len(set(keys)) == 4, after  # one run per trial: no duplicates
    assert all(status == "FINISHED" for _, status, _ in after), after
    finished_before = {run for run, s, _ in before if s == "FINISHED"}
    assert finished_before <= {run for run, _, _ in after}  # finished trials were not redone
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]


def test_resume_without_a_study_is_a_clear_error(tmp_path):
    proc = capstudy(["launch", "--space", str(HERE / "tiny.yaml"), "--resume"], tmp_path)
    assert proc.returncode == 2
    assert "nothing to resume for study 'tiny'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(1800)  # about 11 min on 2 cores (two runs of 4-6 min), over the 600 s default
def test_full_grid_shape_survives_three_driver_kills(tmp_path):
    """full_grid's shape, shrunk to 120 scripted trials (docs/benchmarks/index.md): SIGKILL the
    driver at three random points during training, --resume each time; the per-trial results
    equal the uninterrupted run's.

    Each restart costs a fixed 15-20 s (imports, Ray start-up, the node probe, Ray's restore,
    new trial processes), whatever the study's length, so a short study measures mostly that
    constant (measured on 2 cores: 120 trials at zero-time epochs, ratio 1.53; at 0.5 s
    epochs, 1.17-1.49 over eight runs; at 1 s, 1.41). Real epochs take seconds to minutes;
    here each scripted epoch takes 2 s, which keeps the uninterrupted run about four minutes
    and the ratio a measure of resume overhead rather than of Ray's start-up alone.
    """
    bench = HERE.parents[1] / "benchmarks" / "full_grid_shape.py"
    args = [
        sys.executable,
        str(bench),
        "--space",
        str(HERE / "grid_shape.yaml"),
        "--out",
        str(tmp_path / "out"),
        "--kills",
        "3",
        "--no-analyze",
    ]
    env = {**os.environ, EPOCH_SECONDS_ENV: "2.0"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1700, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    figures = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in proc.stdout.splitlines())
        if value
    )
    assert figures["trials"] == "120"
    # Same status, final epoch and value of the study metric for every trial, one run per
    # trial (the benchmark fails on a duplicate run), and no run left RUNNING.
    assert figures["results_equal"] == "True", figures["differences"]
    assert figures["running_runs"] == "0"
    assert float(figures["time_ratio"]) <= 1.5, figures
