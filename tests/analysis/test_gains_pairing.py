"""Gains are paired by seed; CIs and the seed-noise flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capstudy.analysis import gains


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
            "backbone_params": 1e5 * 2**phi,
            "detector_params": 1.0,
            "macs": 1.0,
            "m": v,
        }  # fmt: skip
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


def test_summary_ci_noise_flag_and_first_significant():
    rng = np.random.default_rng(0)
    rows = []
    for phi, gain in ((-2, 0.001), (-1, 0.2), (0, 0.3)):
        base = [0.30, 0.32, 0.34]
        rows += _rows("random", [0, 1, 2], base, phi)
        treated = [b + gain + d for b, d in zip(base, (0.01, -0.01, 0.0), strict=True)]
        rows += _rows("imagenet", [0, 1, 2], treated, phi)
    selected = pd.DataFrame(rows)
    per_seed = gains.paired_gains(selected, "m").per_seed
    summary = gains.summarize_gains(per_seed, selected, "m", 500, rng).set_index("phi")
    assert summary.loc[-2, "seed_sd"] == pytest.approx(0.02)
    assert bool(summary.loc[-2, "within_noise"]) and not bool(summary.loc[0, "within_noise"])
    assert summary.loc[-2, "ci_lo"] < 0 < summary.loc[-2, "ci_hi"]
    assert summary.loc[-1, "ci_lo"] > 0.15 and summary.loc[-1, "n_seeds"] == 3
    first = gains.smallest_significant(summary.reset_index(), "backbone_params").iloc[0]
    assert first["first_significant_label"] == "L-1" and first["first_significant_sign"] == 1
