"""``capstudy analyze`` gives the study's answer: one shared threshold, or honestly none.

Two hand-made results files, each analysed through the command users run:

* a full_grid-shaped study (32 comparisons, 3 seeds, seed SD 0.01) whose gain rises by 0.06
  per decade above a kink at 100 k backbone parameters: ``tables/pooled.csv`` holds a shared
  threshold whose CI covers 100 k, and the report's headline opens with it;
* a study of 8 comparisons whose gain grows smoothly as a power of capacity (no threshold):
  no shared threshold, "threshold" in at most 1 of the 8 comparisons, and the answer says the
  gain is described by a smooth curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from clitools import run_cli

from capstudy.analysis.power_design import design_from_study
from capstudy.analysis.power_sim import Effect, simulate_table
from capstudy.analysis.simulate import simulate_study_table
from capstudy.study import load


def _analyze(path, out, capsys) -> str:
    args = ["--find-threshold", "--no-mlflow", "--bootstrap", "200", "--out", str(out)]
    assert run_cli(["analyze", "--from", str(path), *args]) == 0
    return capsys.readouterr().out


def test_a_kink_at_100k_is_one_shared_threshold_covering_it(tmp_path, capsys):
    design = design_from_study(load("full_grid"))
    table = simulate_table(design, Effect(seed_sd=0.01, slope=0.06), 3, np.random.default_rng(0))
    table.to_parquet(tmp_path / "kink.parquet")
    printed = _analyze(tmp_path / "kink.parquet", tmp_path / "out", capsys)
    pooled = pd.read_csv(tmp_path / "out" / "tables" / "pooled.csv")
    assert len(pooled) == 1 and pooled.loc[0, "comparisons"] == 32
    assert pooled.loc[0, "verdict"] == "threshold"
    assert pooled.loc[0, "threshold_lo"] <= 1e5 <= pooled.loc[0, "threshold_hi"]
    # The simulated gain is exactly zero below the kink: shown to vanish (TOST, ±0.02).
    assert pooled.loc[0, "plateau_vanishes"] == "vanishes"
    assert abs(pooled.loc[0, "plateau_lo"]) < 0.02 and abs(pooled.loc[0, "plateau_hi"]) < 0.02
    assert printed.splitlines()[0].startswith("**Shared threshold: ")
    assert "below it the gain vanishes" in printed.splitlines()[0]
    headline = (tmp_path / "out" / "report.md").read_text().split("## Headline", 1)[1]
    assert headline.lstrip().startswith("**Shared threshold: ")
    contrasts = pd.read_csv(tmp_path / "out" / "tables" / "contrasts.csv")
    assert set(contrasts["factor"]) == {"family", "train_domain", "eval_domain"}


def test_a_smooth_power_law_gain_is_no_threshold(tmp_path, capsys):
    table = simulate_study_table(
        np.random.default_rng(1),
        slope=0.06,
        seed_sd=0.01,
        eval_domains=("a/rgb", "a/ir", "b/rgb", "b/ir"),
        inits=("random", "imagenet", "imagenet_coco"),
        power=0.4,
    )
    table.to_csv(tmp_path / "smooth.csv", index=False)
    printed = _analyze(tmp_path / "smooth.csv", tmp_path / "out", capsys)
    pooled = pd.read_csv(tmp_path / "out" / "tables" / "pooled.csv")
    assert pooled.loc[0, "verdict"] == "no threshold" and pooled.loc[0, "comparisons"] == 8
    fits = pd.read_csv(tmp_path / "out" / "tables" / "thresholds.csv")
    assert len(fits) == 8 and (fits["verdict"] == "threshold").sum() <= 1
    assert "Shared threshold: none." in printed and "smooth curve" in printed
