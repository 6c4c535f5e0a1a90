"""Power analysis: designs from study files, the simulator's calibration, and the estimate
checked against a direct simulation with a known truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capstudy.analysis import power, threshold
from capstudy.analysis.power_design import (
    Design,
    DesignVariant,
    design_from_study,
    preset_backbone_params,
)
from capstudy.analysis.power_pilot import effect_from_pilot
from capstudy.analysis.power_sim import Effect, noise_scale, simulate_table
from capstudy.analysis.verdicts import FAST_GRID_POINTS, FAST_N_BOOT
from capstudy.families import PARAMS_FILE
from capstudy.study import available_studies, load

# EfficientNet-B0 ultrasmall B0..B-7: 3.6 M down to 17 k backbone parameters.
CAPS = (17_400, 28_396, 42_864, 64_644, 219_356, 501_356, 1_451_136, 3_595_388)


def small_design(caps=CAPS, samples: int = 1, domains=("d/rgb",)) -> Design:
    """One family, one train domain, random vs one pretrained init: one comparison."""
    variants = tuple(
        DesignVariant(
            "efficientnet_b0", -k, f"B-{k}", c, (("family", "efficientnet_b0"), ("phi", -k))
        )
        for k, c in enumerate(reversed(caps))
    )
    return Design(
        "tiny",
        "map50",
        "max",
        variants,
        ("random", "imagenet"),
        ("d/rgb",),
        tuple(domains),
        3,
        samples,
    )


def test_lookup_reads_the_golden_capacity_axis():
    """The power analysis's capacity axis is the golden, measured one (one file, no copy)."""
    golden = json.loads(PARAMS_FILE.read_text())
    assert (
        preset_backbone_params("efficientnet_b0", -7) == golden["ultrasmall"]["efficientnet_b0:-7"]
    )
    assert preset_backbone_params("mobilenetv3_small", -6) == 9_024


def test_design_follows_the_study_grid():
    design = design_from_study(load("full_grid"))
    assert len(design.variants) == 15 and design.families == (
        "efficientnet_b0",
        "mobilenetv3_small",
    )
    assert design.n_comparisons == 32  # 2 families x 2 train x 4 eval x 2 pretrained inits
    assert design.trials(design.n_seeds) == 2880  # the study file's own count
    assert min(v.backbone_params for v in design.variants) == 9_024  # S-6


def test_simulated_table_has_the_grid_and_calibrated_seed_sd():
    """Rows = trials x domains; the selected random-init metric's SD across seeds is the
    assumed seed SD (what a pilot measures), despite HPO spread and a noisy val value."""
    design = small_design(samples=4, domains=("d/rgb", "d/ir"))
    effect = Effect(seed_sd=0.03)
    table = simulate_table(design, effect, 60, np.random.default_rng(1))
    assert len(table) == 8 * 2 * 60 * 4 * 2
    assert table["trial_id"].nunique() == 8 * 2 * 60 * 4
    from capstudy.analysis import selection, tables

    chosen = selection.select_best(tables.normalize(table, source="t")).table
    base = chosen[(chosen["init"] == "random") & (chosen["eval_domain"] == "d/rgb")]
    sd = np.sqrt(base.groupby("variant_key")["map50"].var(ddof=1).mean())
    # 8 variants x 59 dof: relative SE of the pooled SD about 3%.
    assert sd == pytest.approx(0.03, rel=0.1)


def _direct_power(effect: Effect, n_seeds: int, reps: int, seed: int) -> np.ndarray:
    """Independent of the table machinery: per-seed gains drawn directly as the true hinge
    plus the difference of two runs' noise (one HPO sample per cell, no HPO spread, no
    val noise: the selected run is the run), fitted by the threshold test alone."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.log10(CAPS), n_seeds)
    truth = effect.gain(x, x.min(), x.max(), "kink")
    found = np.zeros(reps)
    for r in range(reps):
        y = truth + effect.seed_sd * (rng.standard_normal(x.size) - rng.standard_normal(x.size))
        fit = threshold.find_threshold(
            x, y, x, n_boot=FAST_N_BOOT, rng=rng, grid_points=FAST_GRID_POINTS
        )
        found[r] = fit.verdict == threshold.VERDICT_THRESHOLD and fit.direction == 1
    return found


def test_power_estimate_agrees_with_a_direct_simulation():
    """The power of the whole chain (table, selection, pairing, analyze_table, BH over one
    test) equals that of the threshold test on directly simulated gains, within MC error."""
    effect = Effect(seed_sd=0.02, slope=0.12, hpo_spread=0.0, val_noise=0.0)
    reps = 100
    chain = power.simulate_power(
        small_design(), effect, (3,), reps, scenarios=("kink",), workers=1, base_seed=3
    )
    p_chain = chain["found"].sum() / chain["findable"].sum()
    p_direct = _direct_power(effect, 3, reps, seed=4).mean()
    se = np.sqrt(p_chain * (1 - p_chain) / reps + p_direct * (1 - p_direct) / reps)
    assert 0.15 < p_direct < 0.85, "pick an effect where power is informative"
    assert abs(p_chain - p_direct) < 3 * se, (p_chain, p_direct, se)


def test_power_rises_with_seeds_and_with_effect_size():
    design = small_design()
    base = Effect(seed_sd=0.02, slope=0.08)
    reps = 25
    by_seeds = power.summarize_power(
        power.simulate_power(design, base, (2, 8), reps, scenarios=("kink",), workers=1)
    ).set_index("n_seeds")["found"]
    assert by_seeds[8] > by_seeds[2] + 0.2, by_seeds.to_dict()
    strong = Effect(seed_sd=0.02, slope=0.25)
    by_effect = [
        power.summarize_power(
            power.simulate_power(design, e, (3,), reps, scenarios=("kink",), workers=1)
        )["found"].iloc[0]
        for e in (base, strong)
    ]
    assert by_effect[1] > by_effect[0] + 0.2, by_effect


def test_summary_reports_false_thresholds_and_breakpoint_intervals():
    reps = power.simulate_power(small_design(), Effect(slope=0.15), (5,), 6, workers=1)
    row = power.summarize_power(reps).iloc[0]
    assert 0.0 <= row["false"] <= 1.0 and np.isfinite(row["false_se"])
    assert 0.0 <= row["false_smooth"] <= 1.0 and 0.0 <= row["shared_false_smooth"] <= 1.0
    # One comparison: the shared test is that comparison's, calibrated by the joint bootstrap.
    assert row["shared_found"] >= 0.3 and row["shared_covers"] > 0.5
    assert row["found"] > 0.5
    # The median CI brackets the true kink's order of magnitude.
    assert row["ci_lo"] < 3e5 and row["ci_hi"] > 3e4 and row["ci_ratio"] > 1


def test_pilot_gives_seed_sd_and_gains_with_their_source():
    design = small_design(samples=2)
    truth = Effect(seed_sd=0.03, slope=0.1, plateau=0.01)
    table = simulate_table(design, truth, 12, np.random.default_rng(5))
    measured = effect_from_pilot(table, Effect(), "file pilot.csv", keep=set())
    assert measured.seed_sd == pytest.approx(0.03, rel=0.2)
    assert measured.slope == pytest.approx(0.1, abs=0.03)
    assert measured.plateau == pytest.approx(0.01, abs=0.02)
    assert measured.source("seed_sd").startswith("pilot file pilot.csv")
    explicit = effect_from_pilot(table, Effect(slope=0.2), "x", keep={"slope"})
    assert explicit.slope == 0.2


def test_pilot_without_capacities_above_the_kink_keeps_the_slope_and_says_why():
    small = small_design(caps=CAPS[:4])
    table = simulate_table(small, Effect(), 3, np.random.default_rng(6))
    measured = effect_from_pilot(table, Effect(), "study smoke", keep=set())
    assert measured.slope == Effect().slope
    assert "no comparison with two capacities above the kink" in measured.source("slope")


def test_noise_scale_shrinks_noise_that_selection_would_add():
    one = noise_scale(Effect(hpo_spread=0.0, val_noise=0.0), 1)
    assert one == pytest.approx(0.02, rel=0.01)  # one run per cell: the run's own SD
    assert noise_scale(Effect(), 4) < one


@pytest.mark.parametrize("study", available_studies())
def test_dry_run_line_for_every_shipped_study(study, monkeypatch):
    from capstudy.analysis import power
    from capstudy.analysis.power_design import design_from_study
    from capstudy.capacity import free_backbone_params

    monkeypatch.setattr(power, "PLAN_REPLICATES", 2)
    design = design_from_study(load(study), count=free_backbone_params)
    line = power.plan_line(design, load(study).name, workers=1)
    assert line.startswith(
        (
            "power (simulated, 2 studies): the shared threshold is found in ",
            "power: n/a under the default",
        )
    )
    assert f"capstudy power --space {load(study).name}" in line


def test_power_command_prints_the_table_with_a_pilot(capsys, tmp_path):
    from clitools import run_cli

    pilot = tmp_path / "pilot.csv"
    simulate_table(small_design(), Effect(seed_sd=0.03), 3, np.random.default_rng(7)).to_csv(
        pilot, index=False
    )
    args = ["power", "--space", "smoke", "--seeds", "2", "--replicates", "2", "--workers", "1"]
    code = run_cli([*args, "--kink", "2e4", "--from", str(pilot)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "kink (backbone parameters)         20k      (--kink)" in out
    assert f"(pilot file {pilot}: pooled over 8 variant x domain groups)" in out
    assert "HPO spread / seed noise            1        (default)" in out
    assert any(line.split()[:2] == ["2", "48"] for line in out.splitlines())


def test_power_command_refuses_one_seed(capsys):
    from clitools import run_cli

    assert run_cli(["power", "--space", "smoke", "--seeds", "1,3"]) == 2
    assert "--seeds '1,3': every count must be at least 2" in capsys.readouterr().err


def test_power_command_measures_a_pilot_study_in_mlflow(tracking_uri, capsys):
    """--from-study reads a finished study through the analysis's MLflow reader."""
    from analysis_mlflow_helpers import log_table_as_study
    from clitools import run_cli
    from mlflow.tracking import MlflowClient

    from capstudy.analysis.simulate import simulate_study_table

    table = simulate_study_table(np.random.default_rng(8), n_seeds=3, eval_domains=("a/rgb",))
    log_table_as_study(MlflowClient(tracking_uri), table, "pilot")
    args = ["power", "--space", "smoke", "--seeds", "2", "--replicates", "2", "--workers", "1"]
    code = run_cli([*args, "--from-study", "pilot", "--tracking-uri", tracking_uri])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(pilot study pilot: pooled over 8 variant x domain groups)" in out
    # simulate_study_table's gain rises 0.1 per decade above 100 k: the slope is measured.
    line = next(x for x in out.splitlines() if "gain slope per tenfold capacity" in x)
    assert float(line.split()[5]) == pytest.approx(0.1, abs=0.03), line
    assert "(pilot study pilot: median of 1 comparison, kink held fixed)" in line


def test_power_command_refuses_an_impossible_effect(capsys):
    from clitools import run_cli

    assert run_cli(["power", "--space", "smoke", "--seed-sd", "0", "--kink", "-5"]) == 2
    err = capsys.readouterr().err
    assert "seed_sd 0 (must be > 0); kink -5 (must be > 0)" in err


def test_the_smooth_scenario_is_a_power_law_with_the_kinks_rise():
    """No kink, the same total rise, and convex in log capacity (each decade adds more)."""
    effect = Effect(slope=0.1, kink=1e5)
    x = np.log10(np.array(CAPS, dtype=float))
    smooth = effect.gain(x, x.min(), x.max(), "smooth", 0.6)
    kink = effect.gain(x, x.min(), x.max(), "kink")
    assert smooth[0] == pytest.approx(kink[0]) and smooth[-1] == pytest.approx(kink[-1])
    steps = np.diff(smooth) / np.diff(x)
    assert np.all(np.diff(steps) > 0) and np.all(steps > 0)


def test_shared_covers_counts_only_the_found_thresholds():
    """A shared threshold in the wrong direction is not found, so its CI covering the kink
    must not count as 'covers' (the table showed covers 0% beside found 0%)."""
    effect = Effect(slope=0.075, kink=3e4)
    task = power._Task(small_design(), effect, 1.0, "kink", 3, 0, 0)
    ci = {"verdict": threshold.VERDICT_THRESHOLD, "threshold_lo": 1e4, "threshold_hi": 1e5}
    wrong = power._shared_counts(pd.DataFrame([{**ci, "direction": -1}]), task)
    right = power._shared_counts(pd.DataFrame([{**ci, "direction": 1}]), task)
    assert wrong == {"shared_any": 1, "shared_found": 0, "shared_covers": 0}
    assert right == {"shared_any": 1, "shared_found": 1, "shared_covers": 1}
