"""The command's verdict lines say which p-values are adjusted and omit an empty direction."""

from __future__ import annotations

import pandas as pd

from capstudy.analysis import headline


def _fits(**extra) -> pd.DataFrame:
    base = {"family": "efficientnet_b0", "init": "imagenet", "train_domain": "a/rgb"}
    rows = [
        {
            **base,
            "eval_domain": "a/ir",
            "verdict": "threshold",
            "threshold": 1e5,
            "threshold_lo": 6e4,
            "threshold_hi": 1.3e5,
            "slope": 0.07,
            "p_vs_linear": 0.001,
            "p_vs_constant": 0.002,
            **extra,
        },
        {
            **base,
            "eval_domain": "a/rgb",
            "verdict": "no threshold",
            "p_vs_linear": 0.4,
            "p_vs_constant": 0.9,
            **extra,
        },
    ]
    return pd.DataFrame(rows)


def test_adjusted_p_values_are_marked_so():
    lines = headline.verdict_lines(headline.headline_table(_fits(p_threshold_adj=0.9)))
    assert lines[0].endswith("; gain grows with capacity; p 0.9 (BH-adjusted)")
    assert lines[1].endswith("a/rgb: no threshold; p 0.9 (BH-adjusted)")


def test_unadjusted_p_values_are_marked_once():
    lines = headline.verdict_lines(headline.headline_table(_fits()))
    assert lines[0].endswith("; gain grows with capacity; p 0.002 (unadjusted)")
    assert lines[1].endswith(": no threshold; p 0.9 (unadjusted)")
    assert "BH-adjusted" not in "".join(lines)
