"""Gains of each pretrained initialization over random init, paired on the comparison key.

The comparison key (``pair_key``) is every grid dim of a trial except ``init``: family, phi,
train domain, seed and any other grid dim of the study (free-scale width and depth, preset,
input size, head width, epochs, ...). For every evaluation domain and every init other than
the baseline (``random``), the gain of a comparison is ``metric(init) - metric(random)`` on the
selected trials with that pair key. Pairing on fewer dims would subtract different models
from each other (on a free-scale study every variant has ``phi = 0``). Trials without a random
partner are left out (and counted): an unpaired difference would mix seed noise into the gain.

Per variant (``variant_key``: the pair key without the seed) the gains are summarized by their
mean over seeds, a Student-t interval and the t-test p-value of "gain = 0"; within each
family x train x eval domain x init the p-values are Holm-adjusted across capacities
(:mod:`capstudy.analysis.intervals` says why).

"Within seed noise": run-to-run variation is the standard deviation, across seeds, of the
random-init metric of the same variant and domain (``seed_sd``; sample SD, n-1). A gain is
flagged ``within_noise`` when ``|mean gain| <= seed_sd``: the pretrained init moves the metric
by no more than retraining the scratch model with another seed does. It needs >= 2 seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis import intervals
from capstudy.errors import CapstudyError

BASELINE_INIT = "random"
PAIR_KEYS = ["pair_key", "train_domain", "eval_domain"]
VARIANT_KEYS = ["variant_key", "train_domain", "eval_domain"]
GROUP_KEYS = ["family", "train_domain", "eval_domain", "init"]
_CAPACITY = ["backbone_params", "detector_params", "macs"]
_FROM_BASE = ["family", "phi", "label", "variant_key", "seed", "class_set", *_CAPACITY]


@dataclass
class PairedGains:
    """Per-seed gains and the number of (init, seed) rows that had no random partner."""

    per_seed: pd.DataFrame
    n_unpaired: int


def paired_gains(selected: pd.DataFrame, metric: str, baseline: str = BASELINE_INIT) -> PairedGains:
    """Per-seed gains of every init over ``baseline`` on the selected trials.

    Args:
        selected: one selected trial per cell, with ``pair_key`` and ``variant_key`` columns
            (:func:`capstudy.analysis.tables.normalize` adds them).
        metric: the metric column.
        baseline: the init every other one is compared with.

    Returns:
        Columns GROUP_KEYS, ``variant_key``, ``pair_key``, phi, label, seed, class_set, the
        capacity columns (the baseline run's), ``metric_init``, ``metric_random``, ``gain``.

    Raises:
        CapstudyError: two selected baseline trials share a pair key and domain (the key
            misses a grid dim), so a gain would not be one difference.
    """
    base_cols = PAIR_KEYS + [c for c in _FROM_BASE if c not in PAIR_KEYS] + [metric]
    base = selected.loc[selected["init"] == baseline, base_cols]
    other = selected.loc[selected["init"] != baseline, PAIR_KEYS + ["init", metric]]
    try:
        merged = other.merge(
            base, on=PAIR_KEYS, how="left", suffixes=("_init", "_random"), validate="many_to_one"
        )
    except pd.errors.MergeError:
        dup = base[base.duplicated(PAIR_KEYS, keep=False)].iloc[0]
        raise CapstudyError(
            f"two selected {baseline} trials share the comparison key {dup['pair_key']!r} on "
            f"{dup['eval_domain']}: the key misses a grid dim that tells them apart; record "
            "pair_key/variant_key per trial or add that dim's column to the table"
        ) from None
    paired = merged.dropna(subset=[f"{metric}_random", f"{metric}_init"])
    out = paired.rename(
        columns={f"{metric}_init": "metric_init", f"{metric}_random": "metric_random"}
    )
    out = out.assign(gain=out["metric_init"] - out["metric_random"])
    cols_out = GROUP_KEYS + ["variant_key", "pair_key", "phi", "label", "seed", "class_set"]
    cols_out += _CAPACITY + ["metric_init", "metric_random", "gain"]
    out = out.sort_values(GROUP_KEYS + ["backbone_params", "variant_key", "seed"])
    per_seed = out[cols_out].reset_index(drop=True)
    return PairedGains(per_seed=per_seed, n_unpaired=len(merged) - len(paired))


def summarize_gains(
    per_seed: pd.DataFrame,
    selected: pd.DataFrame,
    metric: str,
    level: float = 0.95,
    baseline: str = BASELINE_INIT,
) -> pd.DataFrame:
    """One row per variant x train x eval domain x init: mean gain, t interval, p-values.

    Returns:
        Columns GROUP_KEYS, ``variant_key``, phi, label, class_set, capacities, ``n_seeds``,
        mean metrics, ``gain``, ``ci_lo``/``ci_hi`` (t interval at ``level``), ``p`` (t-test
        of zero gain), ``p_holm`` (Holm across the variants of the same family x train x
        eval domain x init), ``seed_sd``, ``within_noise``, ``excludes_zero`` (the interval,
        unadjusted) and ``significant`` (``p_holm`` below 1 - level).
    """
    if per_seed.empty:
        return pd.DataFrame()
    noise = (
        selected[selected["init"] == baseline]
        .groupby(VARIANT_KEYS)[metric]
        .agg(seed_sd=lambda v: v.std(ddof=1) if v.notna().sum() >= 2 else np.nan)
        .reset_index()
    )
    keys = GROUP_KEYS + ["variant_key"]
    firsts = {c: (c, "first") for c in ["phi", "label", "class_set", *_CAPACITY]}
    summary = (
        per_seed.groupby(keys, sort=True)
        .agg(
            **firsts,
            n_seeds=("gain", "count"),
            metric_init=("metric_init", "mean"),
            metric_random=("metric_random", "mean"),
            gain=("gain", "mean"),
            sd=("gain", "std"),
        )
        .reset_index()
    )
    # One vectorized t interval per variant (same formula as intervals.t_interval).
    lo, hi, p = intervals.t_from_moments(
        summary["gain"].to_numpy(), summary["sd"].to_numpy(), summary["n_seeds"].to_numpy(), level
    )
    summary = summary.drop(columns="sd").assign(ci_lo=lo, ci_hi=hi, p=p)
    summary["p_holm"] = summary.groupby(GROUP_KEYS)["p"].transform(
        lambda p: intervals.holm(p.to_numpy())
    )
    summary = summary.merge(noise, on=VARIANT_KEYS, how="left", validate="many_to_one")
    summary["within_noise"] = np.where(
        summary["seed_sd"].notna(), summary["gain"].abs() <= summary["seed_sd"], pd.NA
    )
    summary["excludes_zero"] = (summary["ci_lo"] > 0) | (summary["ci_hi"] < 0)
    summary["significant"] = summary["p_holm"] < 1.0 - level
    return summary.sort_values(GROUP_KEYS + ["backbone_params", "variant_key"]).reset_index(
        drop=True
    )


def smallest_significant(summary: pd.DataFrame, capacity: str) -> pd.DataFrame:
    """Per family x train x eval domain x init: the smallest capacity with a significant gain.

    Significant means Holm-adjusted p below the level across the group's capacities. With
    fewer than ``intervals.MIN_RELIABLE_SEEDS`` seeds at some capacity of the group, no
    capacity is named (``first_significant_status`` says why).

    Returns:
        Columns GROUP_KEYS + ``first_significant_capacity``, ``first_significant_label``,
        ``first_significant_sign`` (+1 gain above zero, -1 below, 0 none),
        ``first_significant_p_holm`` and ``first_significant_status`` (``found``, ``none``
        or ``unreliable: < 3 seeds``); NaN/"" where none is named.
    """
    rows = []
    for group, part in summary.groupby(GROUP_KEYS, sort=True):
        row = dict(zip(GROUP_KEYS, group, strict=True))
        row.update(
            first_significant_capacity=np.nan,
            first_significant_label="",
            first_significant_sign=0,
            first_significant_p_holm=np.nan,
            first_significant_status="none",
        )
        sig = part[part["significant"]].sort_values(capacity)
        if int(part["n_seeds"].min()) < intervals.MIN_RELIABLE_SEEDS:
            row["first_significant_status"] = f"unreliable: < {intervals.MIN_RELIABLE_SEEDS} seeds"
        elif not sig.empty:
            best = sig.iloc[0]
            row.update(
                first_significant_capacity=float(best[capacity]),
                first_significant_label=str(best["label"]),
                first_significant_sign=int(np.sign(best["gain"])),
                first_significant_p_holm=float(best["p_holm"]),
                first_significant_status="found",
            )
        rows.append(row)
    return pd.DataFrame(rows)
