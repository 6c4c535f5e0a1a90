"""The shipped smoke study, end to end: launch (pretraining + 48 trials) then analyze.

About ten minutes on 2 cores; the slowest test of the suite (`-m slow`).
"""

from __future__ import annotations

import pytest
from e2e_helpers import capstudy, run_rows

pytestmark = pytest.mark.slow


def test_smoke_launch_then_analyze(tmp_path):
    launched = capstudy(["launch", "--space", "smoke"], tmp_path, timeout=1800, synth_scale=None)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    assert "48/48 trials done, 0 failed" in launched.stdout
    assert [s for _, s, _ in run_rows(tmp_path, "study")] == ["FINISHED"]
    assert sorted(s for _, s, _ in run_rows(tmp_path, "pretrain")) == ["FINISHED"] * 16
    trials = run_rows(tmp_path, "trial")
    assert len(trials) == 48 and {s for _, s, _ in trials} == {"FINISHED"}

    out = tmp_path / "analysis"
    analyzed = capstudy(
        ["analyze", "--study", "smoke", "--find-threshold", "--out", str(out)], tmp_path
    )
    assert analyzed.returncode == 0, analyzed.stdout[-3000:] + analyzed.stderr[-3000:]
    figures = sorted(p.name for p in (out / "figures").glob("gain_*.png"))
    assert len(figures) == 6  # 2 families x 3 evaluation domains
    assert (out / "tables" / "thresholds.csv").is_file() and (out / "report.md").is_file()
    assert [s for _, s, _ in run_rows(tmp_path, "analysis")] == ["FINISHED"]
