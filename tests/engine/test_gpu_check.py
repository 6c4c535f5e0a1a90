"""scripts/gpu_check.sh: its CPU dry run goes through every stage and writes both reports."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from enginefixtures import shared_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cpu_dry_run_writes_the_report(tmp_path: Path):
    data, cache = shared_data()
    env = {
        **os.environ,
        "CAPSTUDY_HOME": str(tmp_path / "home"),
        "CAPSTUDY_DATA": str(data),
        "CAPSTUDY_CACHE": str(cache),
    }
    env.pop("OUT", None)
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out), "--cpu-dry", "--budget", "1500"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    statuses = {s["stage"]: s["status"] for s in report["stages"]}
    stages = ("setup", "env", "tests", "bench", "steps", "determinism", "study")
    assert statuses == dict.fromkeys(stages, "ok"), report
    assert all(s["seconds"] >= 0 and s["timeout"] > 0 for s in report["stages"])
    (row,) = report["bench"]
    assert row["label"] == "B-7" and row["image_size"] == 64
    assert row["trial_images_per_s"] > 0 and row["efficiency"] > 0
    assert row["eval_images_per_s"] > 0 and row["forward_images_per_s"] > 0
    assert {t["outcome"] for t in report["tests"]} == {"skipped"}  # no CUDA here
    markdown = (out / "report.md").read_text()
    assert report["bench_deterministic"][0]["label"] == "B-7"
    assert "no CUDA GPU" in markdown and "| bench | ok |" in markdown
    assert "| eval img/s | loss pass img/s |" in markdown
    assert "gpu_check_tiny" in (out / "study.log").read_text()


def test_a_stage_that_runs_out_of_time_is_reported_as_such(tmp_path: Path):
    """The report script on a hand-made folder: a timed-out stage keeps its row and log."""
    (tmp_path / "stages.jsonl").write_text(
        '{"stage":"setup","status":"ok","rc":0,"seconds":3,"timeout":300,"log":"setup.log"}\n'
        '{"stage":"bench","status":"timeout","rc":124,"seconds":270,"timeout":270,'
        '"log":"bench.log"}\n'
    )
    (tmp_path / "bench.log").write_text("B0 256 px: trial 900.0 img/s\n")
    rows = [
        {
            "label": "B-7",
            "image_size": 512,
            "trial_images_per_s": 90.0,
            "train_images_per_s": 95,
            "step_images_per_s": 100.0,
            "epoch_s": 1.0,
            "images": 90,
            "efficiency": 0.9,
            "packed": {"1": 100.0, "4": 280.0},
        },
    ]
    (tmp_path / "bench.json").write_text(json.dumps({"rows": rows}))
    subprocess.run(
        ["python3", str(ROOT / "scripts" / "gpu_check_report.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["total_seconds"] == 273
    bench = next(s for s in report["stages"] if s["stage"] == "bench")
    assert bench["log_tail"] == ["B0 256 px: trial 900.0 img/s"]
    met = {t["target"]: t["met"] for t in report["targets"]}
    assert met["efficiency >= 0.8 (B-7, 512 px)"] is True
    assert met["4 packed >= 3.0x 1 (B-7, 512 px)"] is False  # 2.8x
    assert "| bench | timeout | 270 | 270 |" in (tmp_path / "report.md").read_text()
