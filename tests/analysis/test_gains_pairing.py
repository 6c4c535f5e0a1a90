"""Gains pair on the comparison key; t intervals, Holm, the seed-noise flag."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli

from capstudy.analysis import gains, intervals, tables, verdicts
from capstudy.errors import CapstudyError


def _rows(init: str, seeds: list[int], values: list[float], phi: int = 0) -> list[dict]:
    return [
        {
            "family": "f",
            "phi": phi,
            "label": f"L{phi}",
            "train_domain": "a",
            "eval_domain": "b",
            "init": init,
            "seed": s,
            "pair_key": f"f|phi={phi}|seed={s}",
            "variant_key": f"f|phi={phi}",
            "class_set": "person",
            "backbone_params": 1e5 * 2**phi,
            "detector_params": 1.0,
            "macs": 1.0,
            "m": v,
        }
        for s, v in zip(seeds, values, strict=True)
    ]


def test_gains_pair_each_seed_with_its_own_random_run():
    rows = _rows("random", [0, 1, 2], [0.10, 0.20, 0.30])
    rows += _rows("imagenet", [3, 2, 1], [0.99, 0.35, 0.21])  # shuffled; seed 3 has no partner
    selected = pd.DataFrame(rows).sample(frac=1.0, random_state=1)
    paired = gains.paired_gains(selected, "m")
    got = paired.per_seed.set_index("seed")["gain"].to_dict()
    assert got == pytest.approx({1: 0.01, 2: 0.05})
    assert paired.n_unpaired == 1
    assert list(paired.per_seed.columns) == [
        *gains.GROUP_KEYS,
        *("variant_key", "pair_key", "phi", "label", "seed", "class_set"),
        *("backbone_params", "detector_params", "macs", "metric_init", "metric_random", "gain"),
    ]
    assert list(paired.per_seed.index) == [0, 1]


def test_summary_t_interval_noise_flag_and_holm_first_significant():
    rows = []
    for phi, gain in ((-2, 0.001), (-1, 0.2), (0, 0.3)):
        base = [0.30, 0.32, 0.34]
        rows += _rows("random", [0, 1, 2], base, phi)
        treated = [b + gain + d for b, d in zip(base, (0.01, -0.01, 0.0), strict=True)]
        rows += _rows("imagenet", [0, 1, 2], treated, phi)
    selected = pd.DataFrame(rows)
    per_seed = gains.paired_gains(selected, "m").per_seed
    summary = gains.summarize_gains(per_seed, selected, "m").set_index("phi")
    assert summary.loc[-2, "seed_sd"] == pytest.approx(0.02)
    assert bool(summary.loc[-2, "within_noise"]) and not bool(summary.loc[0, "within_noise"])
    # t interval of (0.011, -0.009, 0.001): mean 0.001, s = 0.01, t_2 = 4.303.
    half = 4.303 * 0.01 / np.sqrt(3)
    assert summary.loc[-2, "ci_lo"] == pytest.approx(0.001 - half, abs=1e-4)
    assert summary.loc[-2, "ci_hi"] == pytest.approx(0.001 + half, abs=1e-4)
    assert summary.loc[-1, "ci_lo"] > 0.15 and summary.loc[-1, "n_seeds"] == 3
    assert summary["excludes_zero"].to_list() == [False, True, True]
    assert (summary["p_holm"] >= summary["p"]).all()
    first = gains.smallest_significant(summary.reset_index(), "backbone_params").iloc[0]
    assert first["first_significant_label"] == "L-1" and first["first_significant_sign"] == 1
    assert first["first_significant_status"] == "found"
    assert first["first_significant_capacity"] == summary.loc[-1, "backbone_params"] == 5e4
    assert first["first_significant_p_holm"] == summary.loc[-1, "p_holm"] < 0.05
    assert summary.loc[0, "metric_init"] == pytest.approx(0.32 + 0.3)
    assert summary.loc[0, "metric_random"] == pytest.approx(0.32)


def test_no_significant_capacity_among_three_seeds_is_said_so():
    rows = []
    for phi in (-1, 0):
        rows += _rows("random", [0, 1, 2], [0.30, 0.31, 0.32], phi)
        rows += _rows("imagenet", [0, 1, 2], [0.31, 0.30, 0.32], phi)
    selected = pd.DataFrame(rows)
    summary = gains.summarize_gains(gains.paired_gains(selected, "m").per_seed, selected, "m")
    first = gains.smallest_significant(summary, "backbone_params").iloc[0]
    assert first["first_significant_status"] == "none" and first["first_significant_sign"] == 0
    assert np.isnan(first["first_significant_capacity"]) and first["first_significant_label"] == ""
    assert np.isnan(first["first_significant_p_holm"])


def test_summary_intervals_follow_the_level():
    rows = _rows("random", [0, 1, 2, 3], [0.30, 0.32, 0.34, 0.33])
    rows += _rows("imagenet", [0, 1, 2, 3], [0.33, 0.31, 0.36, 0.37])
    selected = pd.DataFrame(rows)
    per_seed = gains.paired_gains(selected, "m").per_seed
    row = gains.summarize_gains(per_seed, selected, "m", level=0.80).iloc[0]
    lo, hi, p = intervals.t_interval(per_seed["gain"].to_numpy(), level=0.80)
    assert (row["ci_lo"], row["ci_hi"], row["p"]) == pytest.approx((lo, hi, p))
    assert row["significant"] == (p < 0.20) and 0.05 < p < 0.20  # significant at 80% only


def test_a_gain_equal_to_the_seed_sd_is_within_noise():
    # Random runs 0, 1, 2: seed SD exactly 1; every pretrained run 1 better: gain exactly 1.
    selected = pd.DataFrame(
        _rows("random", [0, 1, 2], [0.0, 1.0, 2.0]) + _rows("imagenet", [0, 1, 2], [1.0, 2.0, 3.0])
    )
    summary = gains.summarize_gains(gains.paired_gains(selected, "m").per_seed, selected, "m")
    assert summary.loc[0, "seed_sd"] == 1.0 and summary.loc[0, "gain"] == 1.0
    assert bool(summary.loc[0, "within_noise"])
    assert list(summary.columns) == [
        *gains.GROUP_KEYS,
        *("variant_key", "phi", "label", "class_set", "backbone_params", "detector_params"),
        *("macs", "n_seeds", "metric_init", "metric_random", "gain", "ci_lo", "ci_hi", "p"),
        *("p_holm", "seed_sd", "within_noise", "excludes_zero", "significant"),
    ]
    assert list(summary.index) == [0]


def test_a_point_interval_at_zero_excludes_nothing():
    # Identical runs with and without pretraining: gain 0 on every seed, interval [0, 0].
    base = _rows("random", [0, 1, 2], [0.30, 0.32, 0.34])
    selected = pd.DataFrame(base + _rows("imagenet", [0, 1, 2], [0.30, 0.32, 0.34]))
    row = gains.summarize_gains(gains.paired_gains(selected, "m").per_seed, selected, "m").iloc[0]
    assert (row["ci_lo"], row["ci_hi"], row["p"]) == (0.0, 0.0, 1.0)
    assert not row["excludes_zero"] and not row["significant"]


def test_two_seeds_name_no_significant_capacity():
    rows = []
    for phi in (-1, 0):
        rows += _rows("random", [0, 1], [0.30, 0.31], phi)
        rows += _rows("imagenet", [0, 1], [0.60, 0.6101], phi)
    selected = pd.DataFrame(rows)
    summary = gains.summarize_gains(gains.paired_gains(selected, "m").per_seed, selected, "m")
    first = gains.smallest_significant(summary, "backbone_params").iloc[0]
    assert first["first_significant_label"] == "" and first["first_significant_sign"] == 0
    assert first["first_significant_status"] == "unreliable: < 3 seeds"
    # Two seeds are enough for a run-to-run SD (n - 1 = 1) and so for the noise flag.
    assert summary["seed_sd"].to_list() == pytest.approx([np.std([0.30, 0.31], ddof=1)] * 2)
    assert not summary["within_noise"].astype(bool).any()  # a 0.3 gain is far above 0.007


WIDTHS, DEPTHS, SIZES = (0.7, 0.32, 0.15), (1.0, 0.5), (128, 224)


def _free_scale_table() -> pd.DataFrame:
    """A free-scale study: every variant has phi = 0; each has its own known gain."""
    rng = np.random.default_rng(5)
    rows = []
    variants = list(itertools.product(WIDTHS, DEPTHS, SIZES))
    for k, (w, d, size) in enumerate(variants):
        true_gain = 0.01 * (k + 1)  # distinct per variant: a crossed pair shows up
        for seed, init in itertools.product(range(3), ("random", "imagenet")):
            value = 0.2 + 0.1 * w + 0.05 * d + rng.normal(0, 0.02)
            value += true_gain if init == "imagenet" else 0.0
            for domain in ("s/rgb", "s/ir"):
                rows.append(
                    {
                        "family": "efficientnet_b0",
                        "phi": 0,
                        "width_mult": w,
                        "depth_mult": d,
                        "image_size": size,
                        "init": init,
                        "train_domain": "s/rgb",
                        "eval_domain": domain,
                        "seed": seed,
                        "backbone_params": round(4e6 * w**2 * d),
                        "selection_value": value,
                        "selection_metric": "val/map50",
                        "true_gain": true_gain,
                        "map50": value - (0.05 if domain == "s/ir" else 0.0),
                    }
                )
    return pd.DataFrame(rows)


def test_free_scale_pairs_within_each_variant_and_seed():
    table = _free_scale_table()
    truth = table.drop_duplicates(["width_mult", "depth_mult", "image_size"])
    table = tables.normalize(table.drop(columns="true_gain"), source="free")
    per_seed = verdicts.analyze_table(table, find_threshold=False).per_seed
    n_variants = len(WIDTHS) * len(DEPTHS) * len(SIZES)
    assert len(per_seed) == n_variants * 3 * 2  # variants x seeds x eval domains, one init
    assert not per_seed.duplicated(["variant_key", "seed", "init", "eval_domain"]).any()
    assert per_seed["variant_key"].nunique() == n_variants
    expected = {
        f"family=efficientnet_b0|phi=0|train_domain=s/rgb|width_mult={r.width_mult}"
        f"|depth_mult={r.depth_mult}|image_size={r.image_size}": r.true_gain
        for r in truth.itertuples()
    }
    # Each run has its own noise (SD 0.02): a variant's mean gain over 3 seeds is within
    # ~0.016 of its truth, so 0.06 is a wide margin.
    got = per_seed.groupby("variant_key")["gain"].mean()
    for key, gain in got.items():
        assert gain == pytest.approx(expected[key], abs=0.06), key
    # A pairing that crossed variants would mix gains 0.01 .. 0.12: their spread shows it.
    assert np.corrcoef(got.to_numpy(), [expected[k] for k in got.index])[0, 1] > 0.9


def test_analyze_from_free_scale_file_gives_one_gain_per_variant_seed_init(tmp_path):
    path = tmp_path / "free.csv"
    _free_scale_table().drop(columns="true_gain").to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["analyze", "--from", str(path), "--no-mlflow", "--bootstrap", "100", "--out", str(out)]
    assert run_cli(args) == 0
    per_seed = pd.read_csv(out / "tables" / "gains_per_seed.csv")
    assert len(per_seed) == 12 * 3 * 2
    assert not per_seed.duplicated(["variant_key", "seed", "init", "eval_domain"]).any()
    assert pd.read_csv(out / "tables" / "gains.csv")["variant_key"].nunique() == 12


def test_a_key_that_misses_a_grid_dim_is_refused():
    table = _free_scale_table().drop(columns="true_gain")
    table["cell"] = (
        table["width_mult"].astype(str)
        + table["depth_mult"].astype(str)
        + table["image_size"].astype(str)
        + table["init"]
        + table["seed"].astype(str)
    )
    table = tables.normalize(table.drop(columns=["image_size"]), source="missing dim")
    with pytest.raises(CapstudyError, match="share the comparison key .* add that dim's column"):
        verdicts.analyze_table(table, find_threshold=False)
