"""Assumed effect from a finished pilot study: measured seed SD and typical gains.

A power analysis is only as good as its assumed noise and effect. A pilot (``smoke`` or a
small real run) measures them with the same selection and pairing as the analysis:

* ``seed_sd``: pooled SD across seeds of the selected random-init metric, per variant and
  evaluation domain (sqrt of the mean variance): the analysis's own ``seed_sd`` column.
* ``plateau`` and ``slope``: per comparison, least squares of the per-seed gains on the
  hinge with its breakpoint fixed at the assumed kink (linear in plateau and slope); the
  medians over comparisons. The slope needs at least two capacities above the kink, the
  plateau at least one at or below it; otherwise the assumed value stays and the output says
  why. The kink itself is not estimated: a pilot's breakpoint is far too noisy to plan on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from capstudy.analysis import gains, hinge
from capstudy.analysis.power_sim import Effect


def _pilot_tables(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(selected, per_seed gains, metric)`` of a pilot table through the real analysis."""
    from capstudy.analysis import tables, verdicts

    v = verdicts.analyze_table(tables.normalize(table, source="pilot"), find_threshold=False)
    return v.selected, v.per_seed, v.metric


def pooled_seed_sd(selected: pd.DataFrame, metric: str) -> tuple[float, int]:
    """Pooled SD across seeds of the random-init metric, and how many groups it pools."""
    base = selected[selected["init"] == gains.BASELINE_INIT]
    var = base.groupby(gains.VARIANT_KEYS)[metric].var(ddof=1).dropna()
    if var.empty:
        return float("nan"), 0
    return float(np.sqrt(var.mean())), len(var)


def hinge_at_kink(per_seed: pd.DataFrame, kink: float) -> pd.DataFrame:
    """Per comparison: plateau and slope of the hinge with its breakpoint at ``kink``."""
    rows = []
    x0 = np.log10(kink)
    for group, part in per_seed.groupby(gains.GROUP_KEYS, sort=True):
        x = np.log10(part["backbone_params"].to_numpy(dtype=float))
        y = part["gain"].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        above = np.unique(x[x > x0]).size
        below = np.unique(x[x <= x0]).size
        if above >= 2 and below >= 1:
            a, b = hinge.hinge_coefficients(x, y, x0)
            plateau, slope = float(a[0]), float(b[0])
        else:
            slope = float("nan")
            plateau = float(y[x <= x0].mean()) if below else float("nan")
        rows.append({**dict(zip(gains.GROUP_KEYS, group)), "plateau": plateau, "slope": slope})
    return pd.DataFrame(rows, columns=[*gains.GROUP_KEYS, "plateau", "slope"])


def effect_from_pilot(table: pd.DataFrame, effect: Effect, name: str, keep: set[str]) -> Effect:
    """The effect with seed SD, plateau and slope measured on the pilot ``table``.

    Args:
        table: The pilot's tidy table (MLflow study or ``--from`` file).
        effect: The assumed effect (defaults and explicit options).
        name: How to name the pilot in the sources (``study smoke``, ``file x.csv``).
        keep: Fields the user set explicitly: they win over the pilot.

    Returns:
        A new effect whose ``sources`` say, per number, where it came from.
    """
    selected, per_seed, metric = _pilot_tables(table)
    sources = dict(effect.sources)
    values: dict[str, float] = {}
    sd, n_sd = pooled_seed_sd(selected, metric)
    if "seed_sd" not in keep:
        if np.isfinite(sd) and sd > 0:
            values["seed_sd"] = sd
            sources["seed_sd"] = f"pilot {name}: pooled over {n_sd} variant x domain groups"
        else:
            sources["seed_sd"] = f"default; pilot {name} has no variant with 2+ random seeds"
    fits = hinge_at_kink(per_seed, effect.kink)
    for field in ("plateau", "slope"):
        if field in keep:
            continue
        good = fits[field].dropna()
        if good.empty:
            need = "two capacities above" if field == "slope" else "a capacity at or below"
            sources[field] = f"default; pilot {name} has no comparison with {need} the kink"
            continue
        values[field] = float(good.median())
        noun = "comparison" if len(good) == 1 else "comparisons"
        sources[field] = f"pilot {name}: median of {len(good)} {noun}, kink held fixed"
    return dataclasses.replace(effect, **values, sources=sources)
