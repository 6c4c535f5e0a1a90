"""Which launch: a study launched twice without --resume analyses one launch, not both."""

from __future__ import annotations

import numpy as np
import pandas as pd
from analysis_mlflow_helpers import log_table_as_study
from clitools import run_cli
from mlflow.tracking import MlflowClient

from capstudy.analysis.results import load_from_mlflow
from capstudy.analysis.simulate import simulate_study_table


def _two_launches(tracking_uri: str) -> tuple[str, str, pd.DataFrame]:
    """The same study logged twice (same trial ids), the second with +0.5 on every metric."""
    client = MlflowClient(tracking_uri)
    table = simulate_study_table(np.random.default_rng(4), n_seeds=2, eval_domains=("a/rgb",))
    first = log_table_as_study(client, table, "twice")
    second_table = table.assign(map50=table["map50"] + 0.5)
    second = log_table_as_study(client, second_table, "twice", pair_tags=True)
    return first, second, table


def test_relaunched_study_analyses_the_latest_launch_by_default(tmp_path, tracking_uri, capsys):
    first, second, table = _two_launches(tracking_uri)
    out = tmp_path / "out"
    args = ["analyze", "--tracking-uri", tracking_uri, "--study", "twice", "--no-mlflow"]
    assert run_cli([*args, "--find-threshold", "--bootstrap", "100", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"launched 2 times; analysing launch {second}" in printed
    tidy = pd.read_csv(out / "tables" / "tidy.csv")
    assert set(tidy["parent_run_id"]) == {second} and len(tidy) == len(table)
    assert tidy["map50"].min() > table["map50"].min() + 0.4  # the second launch's values
    # Its trials carry the launcher's comparison-key tags, and pairing used them.
    assert tidy["pair_key"].str.startswith("efficientnet_b0|phi=").all()
    assert not tidy["pair_key"].str.contains("init=").any()
    assert "launch (parent run)" in (out / "report.md").read_text()

    older = load_from_mlflow(tracking_uri, "twice", parent=first)
    assert set(older.table["parent_run_id"]) == {first} and older.n_launches == 2
    assert older.table["map50"].max() < table["map50"].max() + 1e-9


def test_every_launch_or_an_unknown_one_is_refused_with_the_fix(tmp_path, tracking_uri, capsys):
    _two_launches(tracking_uri)
    args = ["analyze", "--tracking-uri", tracking_uri, "--study", "twice", "--no-mlflow"]
    assert run_cli([*args, "--parent", "all", "--out", str(tmp_path / "a")]) == 2
    assert "analyse one with --parent RUN_ID" in capsys.readouterr().err
    assert run_cli([*args, "--parent", "nope", "--out", str(tmp_path / "b")]) == 2
    assert "--parent nope: not a launch" in capsys.readouterr().err
