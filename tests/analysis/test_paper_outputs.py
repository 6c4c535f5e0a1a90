"""The outputs researchers reach for after the analysis: headline, paper figures and tables,
Pareto front, cost, and comparisons across studies (``--from A --from B``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli
from mlflow.tracking import MlflowClient

from capstudy import keys
from capstudy.analysis.compare import gain_differences
from capstudy.analysis.pareto import front
from capstudy.analysis.simulate import simulate_study_table


def _two_families(rng) -> pd.DataFrame:
    a = simulate_study_table(rng, n_seeds=3)
    b = simulate_study_table(rng, n_seeds=3, family="mobilenetv3_small", x0=None, slope=0.0)
    b["label"] = ""  # a table without real labels: they come from family and phi
    return pd.concat([a, b], ignore_index=True)


def test_report_leads_with_figure1_and_one_line_per_comparison(tmp_path, capsys):
    path = tmp_path / "two.csv"
    _two_families(np.random.default_rng(5)).to_csv(path, index=False)
    out = tmp_path / "out"
    args = [
        "analyze",
        "--from",
        str(path),
        "--find-threshold",
        "--no-mlflow",
        "--out",
        str(out),
        "--bootstrap",
        "200",
        "--capacity",
        "macs",
    ]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "efficientnet_b0: imagenet vs random, synth_a/rgb → synth_a/ir" in printed
    for ext in ("png", "pdf", "svg"):
        assert (out / "paper" / f"figure1.{ext}").stat().st_size > 1000
        assert (out / "paper" / f"metrics.{ext}").is_file()
    md = (out / "report.md").read_text()
    head = md.split("## Conclusions")[0]
    assert "![Figure 1" in head and "| comparison |" in head  # the answer comes first
    assert md.index("## Headline") < md.index("## Conclusions")
    html = (out / "report.html").read_text()
    assert html.index("headline-figure") < html.index("<h2>Conclusions")
    verdicts = pd.read_csv(out / "tables" / "verdicts.csv")
    assert len(verdicts) == 4  # 2 families x 2 evaluation domains x 1 init
    mnv = verdicts[verdicts["comparison"].str.startswith("mobilenetv3_small")]
    assert (mnv["threshold (95% CI)"] == "no threshold").all()
    variants = (out / "paper" / "variants.md").read_text()
    assert "| S-3 |" in variants and "| B-3 |" in variants  # labels from family and phi
    tex = (out / "paper" / "results.tex").read_text()
    assert r"\begin{tabular}" in tex and r"synth\_a/ir" in tex and "gain imagenet" in tex
    assert (out / "pareto" / "pareto_synth_a-rgb_synth_a-ir.png").is_file()


def test_pareto_front_is_the_set_of_undominated_points():
    pts = pd.DataFrame({"x": [1, 2, 3, 4, 2], "y": [0.1, 0.3, 0.2, 0.5, 0.1]})
    # (3, 0.2) is beaten by (2, 0.3); (2, 0.1) by (1, 0.1).
    assert front(pts, "x", "y").tolist() == [True, True, False, True, False]
    assert front(pts, "x", "y", mode="min").tolist() == [True, False, False, False, False]


def _per_seed(rng, gain, n_seeds, sd=0.02):
    rows = [
        {
            "family": "f",
            "phi": 0,
            "train_domain": "a",
            "eval_domain": "a",
            "init": "imagenet",
            "backbone_params": 1e5,
            "gain": gain + sd * rng.standard_normal(),
        }
        for _ in range(n_seeds)
    ]
    return pd.DataFrame(rows)


def test_difference_interval_covers_the_true_difference():
    """Simulation with a known truth: A's gain 0.05 above B's, 3 seeds each."""
    rng = np.random.default_rng(11)
    hits, n = 0, 400
    for _ in range(n):
        d = gain_differences(_per_seed(rng, 0.10, 3), _per_seed(rng, 0.05, 3), "backbone_params")
        hits += d["ci_lo"].iloc[0] <= 0.05 <= d["ci_hi"].iloc[0]
    assert 0.92 <= hits / n <= 0.98, hits / n


def test_compare_two_studies_from_files(tmp_path, capsys):
    rng = np.random.default_rng(2)
    a, b = simulate_study_table(rng, slope=0.1), simulate_study_table(rng, slope=0.0)
    a["study"], b["study"] = "big224", "small96"
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    a.to_csv(pa, index=False)
    b.to_csv(pb, index=False)
    out = tmp_path / "cmp"
    assert (
        run_cli(
            [
                "analyze",
                "--from",
                str(pa),
                "--from",
                str(pb),
                "--no-mlflow",
                "--out",
                str(out),
                "--bootstrap",
                "100",
            ]
        )
        == 0
    )
    assert "difference" in capsys.readouterr().out
    diff = pd.read_csv(out / "tables" / "differences.csv")
    assert set(diff["eval_domain"]) == {"synth_a/rgb", "synth_a/ir"}
    biggest = diff.sort_values("capacity").iloc[-1]
    assert biggest["difference"] > 0.1 and biggest["ci_lo"] > 0  # a real difference is found
    for name in ("big224", "small96"):
        assert (out / name / "report.html").is_file()
    assert "headline-figure" in (out / "report.html").read_text()


def test_analysis_run_carries_the_report_and_cost(tmp_path, tracking_uri, capsys):
    from analysis_mlflow_helpers import log_table_as_study

    client = MlflowClient(tracking_uri)
    table = simulate_study_table(np.random.default_rng(1), n_seeds=2)
    log_table_as_study(client, table, "costed")
    exp = client.get_experiment_by_name("costed")
    for run in client.search_runs([exp.experiment_id], f"tags.`{keys.T_KIND}` = 'trial'"):
        client.log_metric(run.info.run_id, "cost/device_seconds", 36.0)
    out = tmp_path / "o"
    assert (
        run_cli(
            [
                "analyze",
                "--study",
                "costed",
                "--tracking-uri",
                tracking_uri,
                "--out",
                str(out),
                "--bootstrap",
                "100",
                "--find-threshold",
            ]
        )
        == 0
    )
    cost = pd.read_csv(out / "tables" / "cost.csv").set_index("init")
    n_trials = table["trial_id"].nunique()
    assert cost.loc["total", "trials"] == n_trials
    assert cost.loc["total", "device_hours"] == pytest.approx(n_trials * 36 / 3600)
    (run,) = client.search_runs([exp.experiment_id], f"tags.`{keys.T_KIND}` = 'analysis'")
    assert "## Headline" in run.data.tags["mlflow.note.content"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "paper"} <= names
