"""``capstudy status`` on a study that is still running, from another process, then after it
ends; the launch's own results table, CPU latencies and ``capstudy ls`` (slow: real Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from e2e_helpers import HERE, capstudy

pytestmark = pytest.mark.slow


def _status(home) -> dict | None:
    proc = capstudy(["status", "tiny", "--json"], home, timeout=120)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_status_while_running_and_after(tmp_path):
    env = {**os.environ, "CAPSTUDY_HOME": str(tmp_path), "CAPSTUDY_SYNTH_SCALE": "0.15"}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [
        sys.executable,
        "-m",
        "capstudy.cli.main",
        "launch",
        "--space",
        str(HERE / "tiny.yaml"),
        "--max-concurrent",
        "1",
    ]
    log = (tmp_path / "launch.log").open("w")
    driver = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    seen_running = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and driver.poll() is None:
            report = _status(tmp_path) if (tmp_path / "mlflow.db").exists() else None
            if report and report["state"] == "RUNNING" and report["trials"]["running"] >= 1:
                seen_running = report
                break
            time.sleep(2)
        assert seen_running is not None, "status never saw the study running"
        assert seen_running["next"][0].startswith("capstudy status tiny")
        assert {r["variant"] for r in seen_running["variants"]} <= {"B-6", "B-7"}
        assert driver.wait(timeout=900) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()
    out = (tmp_path / "launch.log").read_text()
    assert "Results of study tiny" in out and "synth_a/ir map50" in out, out[-3000:]
    assert "next: capstudy analyze --study tiny --find-threshold" in out
    assert "CPU latency per image" in out
    # Third-party start-up noise stays out of the launch's output.
    for noise in ("tensorboard", "RAY_AUTH_MODE", "unresolved search space"):
        assert noise.lower() not in out.lower(), noise

    final = _status(tmp_path)
    assert final["state"] == "FINISHED"
    assert final["trials"]["done"] + final["trials"]["stopped"] == 4
    assert all(r["cells"] == "1/1" for r in final["variants"])
    assert final["next"] == ["capstudy analyze --study tiny --find-threshold"]
    listed = capstudy(["ls"], tmp_path, timeout=120)
    assert listed.returncode == 0 and "tiny" in listed.stdout and "FINISHED" in listed.stdout
