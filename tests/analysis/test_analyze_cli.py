"""``capstudy analyze`` end to end: a hand-made file, and a study in a SQLite MLflow store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_mlflow_helpers import log_table_as_study
from clitools import run_cli
from mlflow.tracking import MlflowClient

from capstudy import keys
from capstudy.analysis import mlflow_io
from capstudy.analysis.simulate import simulate_study_table


@pytest.fixture
def results_csv(tmp_path):
    path = tmp_path / "results.csv"
    # A clear threshold (0.15 mAP50 per tenfold above 100 k parameters, 3 seeds): found in
    # 20 of 20 simulated tables after the study-wide adjustment.
    simulate_study_table(np.random.default_rng(3), slope=0.15, n_seeds=5).to_csv(path, index=False)
    return path


def test_from_file_writes_report_figures_and_tables(tmp_path, results_csv, capsys):
    out = tmp_path / "out"
    export = tmp_path / "tidy.parquet"
    args = ["--find-threshold", "--no-mlflow", "--bootstrap", "200", "--out", str(out)]
    code = run_cli(["analyze", "--from", str(results_csv), *args, "--export", str(export)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "efficientnet_b0: imagenet vs random, synth_a/rgb → synth_a/ir: " in printed
    assert pd.read_parquet(export).shape[0] == pd.read_csv(results_csv).shape[0]
    for name in ("tidy", "selected", "gains_per_seed", "gains", "thresholds"):
        assert (out / "tables" / f"{name}.csv").stat().st_size > 0
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == [
        "gain_efficientnet_b0_synth_a-rgb_synth_a-ir.png",
        "gain_efficientnet_b0_synth_a-rgb_synth_a-rgb.png",
        "metric_efficientnet_b0_synth_a-rgb_synth_a-ir.png",
        "metric_efficientnet_b0_synth_a-rgb_synth_a-rgb.png",
    ]
    html = (out / "report.html").read_text()
    # The four figures, and Figure 1 once more at the top (the headline).
    assert html.count("data:image/png;base64,") == 5 and "src='figures" not in html
    md = (out / "report.md").read_text()
    assert "## Conclusions" in md and "](figures/gain_" in md
    fits = pd.read_csv(out / "tables" / "thresholds.csv")
    found = fits[fits["verdict"] == "threshold"]
    assert ((found["threshold_lo"] < 1e5) & (found["threshold_hi"] > 1e5)).all()
    # The study's answer: one shared threshold, whose CI covers the simulated 100 k.
    pooled = pd.read_csv(out / "tables" / "pooled.csv")
    assert len(pooled) == 1 and pooled.loc[0, "verdict"] == "threshold"
    assert pooled.loc[0, "threshold_lo"] < 1e5 < pooled.loc[0, "threshold_hi"]
    assert "Shared threshold: " in printed.splitlines()[0] + md
    # A second run into the same folder says it replaces the earlier one.
    args = ["--no-mlflow", "--bootstrap", "100", "--out", str(out)]
    assert run_cli(["analyze", "--from", str(results_csv), *args]) == 0
    assert "Replacing the earlier analysis" in capsys.readouterr().out
    assert not (out / "tables" / "thresholds.csv").exists()


def test_bad_inputs_exit_2_with_a_message(tmp_path, results_csv, capsys):
    bad = tmp_path / "bad.csv"
    pd.read_csv(results_csv).drop(columns=["seed"]).to_csv(bad, index=False)
    assert run_cli(["analyze", "--from", str(bad), "--no-mlflow"]) == 2
    assert "error:" in capsys.readouterr().err
    args = ["analyze", "--from", str(results_csv), "--no-mlflow", "--out", str(tmp_path / "o")]
    assert run_cli([*args, "--metric", "top1"]) == 2
    assert run_cli([*args, "--capacity", "flops"]) == 2


def test_latest_study_from_mlflow_logs_an_analysis_run(tmp_path, tracking_uri, capsys):
    client = MlflowClient(tracking_uri)
    table = simulate_study_table(np.random.default_rng(4), n_seeds=2, eval_domains=("a/rgb",))
    log_table_as_study(client, table, "smoke")
    out = tmp_path / "out"
    args = ["--find-threshold", "--bootstrap", "200", "--out", str(out)]
    code = run_cli(["analyze", "--tracking-uri", tracking_uri, *args])
    assert code == 0
    assert "Using the most recent study: smoke" in capsys.readouterr().out
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id], f"tags.`{keys.T_KIND}` = 'analysis'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["capacity"] == "backbone_params"
    assert run.data.metrics["threshold/efficientnet_b0/a/rgb/a/rgb/imagenet/found"] in (-1, 0, 1)
    assert run.data.metrics["count/trials"] == 32
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "report.md", "figures", "tables"} <= names


def test_analysis_run_is_marked_failed_when_logging_breaks(tmp_path, tracking_uri, monkeypatch):
    from mlflow.tracking import MlflowClient as Client

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Client, "log_artifacts", broken)
    (tmp_path / "report.md").write_text("x")
    with pytest.raises(OSError):
        mlflow_io.log_analysis_run(tracking_uri, "s", tmp_path, {"a": "1"}, {"m": 1.0})
    runs = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name("s").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]


def test_study_without_a_pretrained_init_reports_that_there_is_nothing_to_compare(tmp_path):
    table = simulate_study_table(np.random.default_rng(0), inits=("random",))
    path = tmp_path / "random_only.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["--find-threshold", "--no-mlflow", "--bootstrap", "100", "--out", str(out)]
    code = run_cli(["analyze", "--from", str(path), *args])
    assert code == 0
    assert "No gains to analyze" in (out / "report.md").read_text()
    assert sorted(p.name for p in (out / "figures").glob("gain_*.png")) == []
    assert len(list((out / "figures").glob("metric_*.png"))) == 2


def test_report_names_splits_class_sets_and_unreliable_seeds(tmp_path):
    table = simulate_study_table(np.random.default_rng(1), n_seeds=2)
    table["class_set"] = np.where(table["eval_domain"] == "synth_a/ir", "person", "")
    path = tmp_path / "classes.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["--find-threshold", "--no-mlflow", "--bootstrap", "100", "--out", str(out)]
    assert run_cli(["analyze", "--from", str(path), *args]) == 0
    md = (out / "report.md").read_text()
    assert "published evaluation split" in md and "held out of the training split" in md
    assert "train synth_a/rgb -> eval synth_a/ir: person" in md
    assert "(classes: person)" in md  # in that comparison's conclusion
    assert "Gain CIs are unreliable here" in md
    assert "The smallest capacity whose gain differs from zero" not in md
    gains_table = pd.read_csv(out / "tables" / "gains.csv", keep_default_na=False)
    assert set(gains_table.loc[gains_table["eval_domain"] == "synth_a/ir", "class_set"]) == {
        "person"
    }
