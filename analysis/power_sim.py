"""Simulated trial tables shaped like a study's grid, under an assumed effect (pure numpy).

One table is what a finished study would record: every cell (variant x init x train domain x
seed) with ``samples_per_cell`` HPO trials, each reporting a noisy in-domain validation value
(``selection_value``) and the metric on every evaluation domain. The analysis then selects,
pairs, tests and fits it exactly as it does a real study.

The generative model of one trial ``t`` on evaluation domain ``d`` (``x = log10`` backbone
parameters)::

    metric[t, d] = base(x, d) + gain(x, init) + c * (hpo_spread * h[t] + e[t, d])
    selection_value[t] = in-domain metric[t] + c * val_noise * v[t]

* ``gain`` is 0 for random init; for every pretrained init and every domain it is the hinge
  ``plateau + slope * max(0, x - log10 kink)``; or, for the no-kink scenarios, a curve with
  the same total rise between the family's smallest and largest capacity, so only the kink
  differs: the straight line (``null``) or a power law ``gain ~ C ** exponent`` (``smooth``,
  convex in log capacity: smooth growth as transfer scaling laws predict, no capacity where
  the gain vanishes).
* ``h`` (how good the trial's HPO values are), ``e`` (the run's seed noise; correlation
  ``domain_corr`` between domains, since one model is scored on all of them) and ``v`` (the
  noise of the validation subset) are standard normal.
* ``c`` is calibrated so that the *selected* trial's in-domain metric has SD ``seed_sd``
  across seeds: that is the figure ``capstudy analyze`` reports as ``seed_sd`` and the one
  a pilot study measures, so an assumed and a measured seed SD mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capstudy.analysis.power_design import Design, cell_text
from capstudy.analysis.simulate import power_gain

# Draws used to calibrate the noise scale; the calibrated SD is then good to about 0.3%.
_CALIBRATION_CELLS = 100_000
# Scratch-model metric level and its rise per decade of capacity: irrelevant to gains (they
# cancel in the pairing) but keeps simulated tables looking like mAP50 values.
_BASE_LEVEL, _BASE_SLOPE, _SHIFT_DROP = 0.30, 0.08, 0.08


@dataclass(frozen=True)
class Effect:
    """The assumed truth a power analysis simulates (defaults: the power guide's worked example).

    Attributes:
        seed_sd: SD across seeds of the selected trial's metric (mAP units).
        slope: Gain per tenfold backbone capacity above the kink.
        kink: Backbone parameters at which the gain starts to rise.
        plateau: Gain below the kink.
        hpo_spread: SD of trial quality from HPO values, relative to one run's seed noise.
        val_noise: SD of the validation subset's noise, relative to one run's seed noise.
        domain_corr: Correlation of one run's seed noise between evaluation domains.
        sources: Field name -> where its value came from (``default``, an option, a pilot).
    """

    seed_sd: float = 0.02
    slope: float = 0.075
    kink: float = 1.0e5
    plateau: float = 0.0
    hpo_spread: float = 1.0
    val_noise: float = 0.5
    domain_corr: float = 0.5
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        positive = {"seed_sd": self.seed_sd, "kink": self.kink}
        non_negative = {"hpo_spread": self.hpo_spread, "val_noise": self.val_noise}
        bad = [f"{k} {v:g} (must be > 0)" for k, v in positive.items() if not v > 0]
        bad += [f"{k} {v:g} (must be >= 0)" for k, v in non_negative.items() if not v >= 0]
        if not 0.0 <= self.domain_corr <= 1.0:
            bad.append(f"domain_corr {self.domain_corr:g} (must be in [0, 1])")
        if bad:
            raise ValueError("assumed effect: " + "; ".join(bad))

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from."""
        return self.sources.get(name, "default")

    def gain(
        self, x: np.ndarray, x_min: float, x_max: float, shape: str, exponent: float = 0.4
    ) -> np.ndarray:
        """True gain at log10 capacity ``x`` of a family spanning ``[x_min, x_max]``.

        ``shape``: ``kink`` (the hinge), ``null`` (a line) or ``smooth`` (a power law with
        ``exponent``), the last two with the hinge's total rise over the family's range.
        """
        x0 = np.log10(self.kink)

        def hinge(v):
            return self.plateau + self.slope * np.maximum(0.0, np.asarray(v, dtype=float) - x0)

        if shape == "kink":
            return hinge(x)
        lo, hi = hinge(x_min), hinge(x_max)
        if x_max <= x_min:
            return lo + 0.0 * np.asarray(x, dtype=float)
        if shape == "smooth":
            return lo + power_gain(x, exponent, hi - lo, x_min, x_max)
        return lo + (hi - lo) * (np.asarray(x, dtype=float) - x_min) / (x_max - x_min)


def noise_scale(effect: Effect, samples_per_cell: int, mode: str = "max") -> float:
    """``c`` of the module docstring: the selected trial's metric then has SD ``seed_sd``."""
    rng = np.random.default_rng(20261128)
    k, rho = samples_per_cell, effect.domain_corr
    h = rng.standard_normal((_CALIBRATION_CELLS, k))
    e = np.sqrt(rho) * rng.standard_normal((_CALIBRATION_CELLS, k))
    e += np.sqrt(1.0 - rho) * rng.standard_normal((_CALIBRATION_CELLS, k))
    metric = effect.hpo_spread * h + e
    val = metric + effect.val_noise * rng.standard_normal((_CALIBRATION_CELLS, k))
    pick = np.argmax(val, axis=1) if mode == "max" else np.argmin(val, axis=1)
    selected = metric[np.arange(_CALIBRATION_CELLS), pick]
    return effect.seed_sd / float(selected.std(ddof=1))


@dataclass(frozen=True)
class _Grid:
    """Index arrays of every trial of the design (one entry per trial)."""

    variant: np.ndarray
    init: np.ndarray
    train: np.ndarray
    seed: np.ndarray
    sample: np.ndarray


def _trial_grid(design: Design, n_seeds: int) -> _Grid:
    shape = (
        len(design.variants),
        len(design.inits),
        len(design.train_domains),
        n_seeds,
        design.samples_per_cell,
    )
    idx = np.indices(shape).reshape(len(shape), -1)
    return _Grid(*idx)


def _true_gains(design: Design, effect: Effect, shape: str, exponent: float) -> np.ndarray:
    """Gain of each variant for a pretrained init (families keep their own range)."""
    x = np.log10([v.backbone_params for v in design.variants])
    fam = np.array([v.family for v in design.variants])
    out = np.empty_like(x)
    for family in design.families:
        sel = fam == family
        out[sel] = effect.gain(x[sel], x[sel].min(), x[sel].max(), shape, exponent)
    return out


def simulate_table(
    design: Design,
    effect: Effect,
    n_seeds: int,
    rng: np.random.Generator,
    *,
    shape: str = "kink",
    exponent: float = 0.4,
    scale: float | None = None,
) -> pd.DataFrame:
    """One simulated tidy table of the whole grid (see the module docstring).

    Args:
        design: The study's grid.
        effect: The assumed truth.
        n_seeds: Seeds per cell (replaces the study's own seed list).
        rng: Random generator.
        shape: ``kink`` (the effect), ``null`` (a line) or ``smooth`` (a power law), the
            last two without a kink (:meth:`Effect.gain`).
        exponent: The power law's exponent (``smooth`` only).
        scale: ``noise_scale(...)`` if already computed (it depends only on the effect).

    Returns:
        One row per trial x evaluation domain, with the columns the analysis reads.
    """
    c = noise_scale(effect, design.samples_per_cell, design.mode) if scale is None else scale
    g = _trial_grid(design, n_seeds)
    n_trials, n_dom = g.variant.size, len(design.eval_domains)
    x = np.log10([v.backbone_params for v in design.variants])[g.variant]
    pretrained = np.array([i != "random" for i in design.inits])[g.init]
    gain = np.where(pretrained, _true_gains(design, effect, shape, exponent)[g.variant], 0.0)
    rho = effect.domain_corr
    shared = np.sqrt(rho) * rng.standard_normal(n_trials)
    own = np.sqrt(1.0 - rho) * rng.standard_normal((n_trials, n_dom + 1))
    quality = effect.hpo_spread * rng.standard_normal(n_trials)
    noise = c * (quality[:, None] + shared[:, None] + own)  # last column: an unseen train split
    trains = np.array(design.train_domains)[g.train]
    domains = np.array(design.eval_domains)
    shift = trains[:, None] != domains[None, :]
    level = _BASE_LEVEL + _BASE_SLOPE * (x - 5.0) + gain
    metric = level[:, None] - _SHIFT_DROP * shift + noise[:, :n_dom]
    # In-domain value: the train domain's column when it is evaluated, else the extra one.
    where = {d: i for i, d in enumerate(design.eval_domains)}
    col = np.array([where.get(t, -1) for t in design.train_domains])[g.train]
    evaluated = metric[np.arange(n_trials), np.maximum(col, 0)]
    in_domain = np.where(col >= 0, evaluated, level + noise[:, n_dom])
    selection = in_domain + c * effect.val_noise * rng.standard_normal(n_trials)
    return _assemble(design, g, metric, selection)


def _assemble(design: Design, g: _Grid, metric: np.ndarray, selection: np.ndarray) -> pd.DataFrame:
    """The tidy table (trials x domains, row-major) from the simulated arrays."""
    n_dom = len(design.eval_domains)
    texts = {}
    for vi, var in enumerate(design.variants):
        for ii, init in enumerate(design.inits):
            for ti, train in enumerate(design.train_domains):
                for s in np.unique(g.seed):
                    texts[vi, ii, ti, int(s)] = cell_text(var, init, train, int(s))
    keys = [texts[v, i, t, s] for v, i, t, s in zip(g.variant, g.init, g.train, g.seed)]
    cell, pair, var_key = (np.array(col, dtype=object) for col in zip(*keys))
    trial_id = np.char.add(np.char.add(cell.astype(str), "#"), g.sample.astype(str))
    variants = design.variants

    def per_trial(values):
        return np.repeat(np.asarray(values, dtype=object), n_dom)

    return pd.DataFrame(
        {
            "study": design.study,
            "trial_id": np.repeat(trial_id, n_dom),
            "cell": per_trial(cell),
            "pair_key": per_trial(pair),
            "variant_key": per_trial(var_key),
            "family": per_trial([variants[v].family for v in g.variant]),
            "phi": np.repeat([variants[v].phi for v in g.variant], n_dom),
            "label": per_trial([variants[v].label for v in g.variant]),
            "init": per_trial(np.array(design.inits, dtype=object)[g.init]),
            "train_domain": per_trial(np.array(design.train_domains, dtype=object)[g.train]),
            "eval_domain": np.tile(np.array(design.eval_domains, dtype=object), g.variant.size),
            "seed": np.repeat(g.seed, n_dom),
            "backbone_params": np.repeat(
                [float(variants[v].backbone_params) for v in g.variant], n_dom
            ),
            "selection_metric": f"val/{design.metric}",
            "selection_value": np.repeat(selection, n_dom),
            design.metric: metric.reshape(-1),
        }
    )
