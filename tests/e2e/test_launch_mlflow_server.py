"""A study tracked by a real ``mlflow server`` over HTTP (the cluster set-up), not SQLite."""

from __future__ import annotations

import pytest
from e2e_helpers import HERE, capstudy, run_rows

pytestmark = pytest.mark.slow


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
