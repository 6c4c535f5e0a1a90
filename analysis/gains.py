"""Gains of each pretrained initialization over random init, paired by seed.

For every family x phi x train domain x evaluation domain and every init other than the
baseline (``random``), the gain of seed ``s`` is ``metric(init, s) - metric(random, s)`` on the
selected trials. Seeds present for only one of the two are left out (and counted): an
unpaired difference would mix seed noise into the gain.

Per variant the gains are summarized by their mean over seeds and a 95% percentile bootstrap
CI over seeds (small-sample adjusted; :mod:`capstudy.analysis.bootstrap`).

"Within seed noise": run-to-run variation is the standard deviation, across seeds, of the
random-init metric of the same variant and domain (``seed_sd``; sample SD, n-1). A gain is
flagged ``within_noise`` when ``|mean gain| <= seed_sd``: the pretrained init moves the metric
by no more than retraining the scratch model with another seed does. It needs >= 2 seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis.bootstrap import mean_ci

BASELINE_INIT = "random"
VARIANT_KEYS = ["family", "phi", "train_domain", "eval_domain"]
GROUP_KEYS = ["family", "train_domain", "eval_domain", "init"]
_CAPACITY = ["backbone_params", "detector_params", "macs"]


@dataclass
class PairedGains:
    """Per-seed gains and the number of (init, seed) rows that had no random partner."""

    per_seed: pd.DataFrame
    n_unpaired: int


def paired_gains(selected: pd.DataFrame, metric: str, baseline: str = BASELINE_INIT) -> PairedGains:
    """Per-seed gains of every init over ``baseline`` on the selected trials.

    Returns:
        Columns: family, phi, label, train_domain, eval_domain, init, seed, the capacity
        columns (the baseline run's, identical across inits by construction), ``metric_init``,
        ``metric_random`` and ``gain``.
    """
    cols = VARIANT_KEYS + ["seed", "label", metric] + _CAPACITY
    base = selected.loc[selected["init"] == baseline, cols]
    other = selected.loc[selected["init"] != baseline, VARIANT_KEYS + ["seed", "init", metric]]
    merged = other.merge(
        base, on=VARIANT_KEYS + ["seed"], how="left", suffixes=("_init", "_random")
    )
    paired = merged.dropna(subset=[f"{metric}_random", f"{metric}_init"])
    out = paired.rename(
        columns={f"{metric}_init": "metric_init", f"{metric}_random": "metric_random"}
    )
    out = out.assign(gain=out["metric_init"] - out["metric_random"])
    order = GROUP_KEYS + ["phi", "seed"]
    cols_out = order[:4] + ["phi", "label", "seed"] + _CAPACITY
    cols_out += ["metric_init", "metric_random", "gain"]
    out = out.sort_values(order)[cols_out].reset_index(drop=True)
    return PairedGains(per_seed=out, n_unpaired=len(merged) - len(paired))


def summarize_gains(
    per_seed: pd.DataFrame,
    selected: pd.DataFrame,
    metric: str,
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.95,
    baseline: str = BASELINE_INIT,
) -> pd.DataFrame:
    """One row per family x phi x train x eval domain x init: mean gain, CI, noise flag."""
    noise = (
        selected[selected["init"] == baseline]
        .groupby(VARIANT_KEYS)[metric]
        .agg(seed_sd=lambda v: v.std(ddof=1) if v.notna().sum() >= 2 else np.nan)
        .reset_index()
    )
    rows = []
    for group, part in per_seed.groupby(GROUP_KEYS + ["phi"], sort=True):
        lo, hi = mean_ci(part["gain"].to_numpy(), n_boot, rng, level)
        first = part.iloc[0]
        rows.append(
            {
                **dict(zip(GROUP_KEYS + ["phi"], group, strict=True)),
                "label": first["label"],
                **{c: first[c] for c in _CAPACITY},
                "n_seeds": len(part),
                "metric_init": part["metric_init"].mean(),
                "metric_random": part["metric_random"].mean(),
                "gain": part["gain"].mean(),
                "ci_lo": lo,
                "ci_hi": hi,
            }
        )
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary = summary.merge(noise, on=VARIANT_KEYS, how="left")
    summary["within_noise"] = np.where(
        summary["seed_sd"].notna(), summary["gain"].abs() <= summary["seed_sd"], pd.NA
    )
    summary["excludes_zero"] = (summary["ci_lo"] > 0) | (summary["ci_hi"] < 0)
    return summary


def smallest_significant(summary: pd.DataFrame, capacity: str) -> pd.DataFrame:
    """Per family x train x eval domain x init: the smallest capacity whose CI excludes 0.

    Returns:
        Columns GROUP_KEYS + ``first_significant_capacity``, ``first_significant_label`` and
        ``first_significant_sign`` (+1 gain above zero, -1 below); NaN/"" when none does.
    """
    rows = []
    for group, part in summary.groupby(GROUP_KEYS, sort=True):
        sig = part[part["excludes_zero"]].sort_values(capacity)
        row = dict(zip(GROUP_KEYS, group, strict=True))
        if sig.empty:
            row.update(
                first_significant_capacity=np.nan,
                first_significant_label="",
                first_significant_sign=0,
            )
        else:
            best = sig.iloc[0]
            row.update(
                first_significant_capacity=float(best[capacity]),
                first_significant_label=str(best["label"]),
                first_significant_sign=int(np.sign(best["gain"])),
            )
        rows.append(row)
    return pd.DataFrame(rows)
