"""A bootstrap that resamples runs, not rows, across all comparisons of a study at once.

The independent unit of a capacity study is one training run. A run of a variant (family x
grid dims x train domain) with seed ``s`` is scored on every evaluation domain, and the
random-init run of that seed is the baseline of every pretrained init: the per-seed gains of
all comparisons that share a variant and a seed come from the same runs. Resampling each
comparison's rows on its own would treat them as independent and understate the error of
anything pooled over comparisons.

Here each variant (``train_domain`` x ``variant_key``) is a stratum with its list of seeds.
A replicate draws, per stratum, seeds with replacement, and *every* comparison takes the same
drawn seeds: a drawn seed carries all its evaluation domains and both pretrained inits
together. What is resampled is each gain's deviation from its comparison's mean at that
variant, inflated by ``sqrt(n / (n - 1))`` (the small-sample correction of
:mod:`capstudy.analysis.bootstrap`), added to a fitted curve (``centers``): a model-based
bootstrap whose noise is purely seed-to-seed variation with its cross-comparison structure.
A comparison that lacks a drawn seed (a failed run) takes one of its own seeds instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from capstudy.analysis.gains import GROUP_KEYS


@dataclass(frozen=True)
class Comparison:
    """One comparison's observations: log10 capacity, gain, stratum and seed slot of each."""

    key: tuple
    x: np.ndarray
    y: np.ndarray
    stratum: np.ndarray
    slot: np.ndarray


@dataclass(frozen=True)
class JointData:
    """The comparisons of a study and the seed lists of its strata."""

    comparisons: list[Comparison]
    strata_sizes: np.ndarray

    @property
    def max_seeds(self) -> int:
        return int(self.strata_sizes.max()) if self.strata_sizes.size else 0


def prepare(per_seed: pd.DataFrame, capacity: str, min_caps: int, min_obs: int) -> JointData:
    """Group per-seed gains into comparisons with shared strata and seed slots.

    Comparisons with fewer than ``min_caps`` capacities or ``min_obs`` gains are left out.
    """
    ok = pd.to_numeric(per_seed[capacity], errors="coerce").gt(0) & per_seed["gain"].notna()
    rows = per_seed[ok].copy()
    rows["_stratum"] = rows["train_domain"].astype(str) + "|" + rows["variant_key"].astype(str)
    kept = []
    for key, part in rows.groupby(GROUP_KEYS, sort=True):
        if part[capacity].nunique() >= min_caps and len(part) >= min_obs:
            kept.append((key, part))
    used = pd.concat([p for _, p in kept]) if kept else rows.iloc[:0]
    seeds = {s: sorted(part["seed"].unique()) for s, part in used.groupby("_stratum")}
    ids = {s: i for i, s in enumerate(sorted(seeds))}
    comparisons = []
    for key, part in kept:
        strata = part["_stratum"].to_numpy()
        comparisons.append(
            Comparison(
                key=tuple(key),
                x=np.log10(part[capacity].to_numpy(dtype=float)),
                y=part["gain"].to_numpy(dtype=float),
                stratum=np.array([ids[s] for s in strata]),
                slot=np.array([seeds[s].index(v) for s, v in zip(strata, part["seed"])]),
            )
        )
    sizes = np.array([len(seeds[s]) for s in sorted(seeds)], dtype=int)
    return JointData(comparisons, sizes)


def seed_draws(data: JointData, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Drawn seed slots: ``(n_boot, strata, max_seeds)``, each within its stratum's list."""
    u = rng.random((n_boot, data.strata_sizes.size, data.max_seeds))
    return np.floor(u * data.strata_sizes[None, :, None]).astype(int)


def resample(
    data: JointData,
    centers: list[np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    draws: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Joint replicates of every comparison's gains: one ``(n_boot, n_j)`` array each.

    Args:
        data: the study's comparisons (:func:`prepare`).
        centers: each comparison's fitted value per observation (the bootstrap's truth).
        n_boot: replicates.
        rng: random generator.
        draws: seed slots from :func:`seed_draws` (drawn here when None).
    """
    draws = seed_draws(data, n_boot, rng) if draws is None else draws
    out = []
    for comp, center in zip(data.comparisons, centers):
        resid, scale = _residuals(comp, data)
        picked = draws[:, comp.stratum, comp.slot]
        values = resid[comp.stratum[None, :], picked]
        missing = np.isnan(values)
        if missing.any():
            values[missing] = _own_draws(comp, resid, missing, rng)
        out.append(np.asarray(center, dtype=float)[None, :] + scale[None, :] * values)
    return out


def _residuals(comp: Comparison, data: JointData) -> tuple[np.ndarray, np.ndarray]:
    """Deviations from the comparison's mean per stratum (strata x seeds, NaN where absent)
    and each observation's small-sample inflation."""
    resid = np.full((data.strata_sizes.size, max(data.max_seeds, 1)), np.nan)
    scale = np.zeros(comp.y.size)
    for s in np.unique(comp.stratum):
        idx = np.flatnonzero(comp.stratum == s)
        resid[s, comp.slot[idx]] = comp.y[idx] - comp.y[idx].mean()
        n = idx.size
        scale[idx] = np.sqrt(n / (n - 1.0)) if n > 1 else 0.0
    return resid, scale


def _own_draws(comp, resid, missing, rng) -> np.ndarray:
    """Residuals for draws of seeds the comparison lacks: one of its own seeds instead."""
    rows, cols = np.nonzero(missing)
    out = np.empty(rows.size)
    for k, (_, o) in enumerate(zip(rows, cols)):
        s = comp.stratum[o]
        own = comp.slot[comp.stratum == s]
        out[k] = resid[s, own[rng.integers(own.size)]]
    return out
