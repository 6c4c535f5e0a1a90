"""Synthetic capacity studies with a known truth, for validating the threshold analysis.

Metrics are simulated per run, not per gain: each (variant, init, seed) run gets the metric
``base(x) + gain(x) + noise`` with independent seed noise, so a paired gain carries the noise
of two runs, as in a real study. ``gain(x)`` is the hinge ``plateau + slope * max(0, x - x0)``
when a threshold is given, or ``plateau + slope * (x - x_mid)`` (a line, or a constant with
``slope = 0``) when it is not. With ``power`` set, the gain instead grows smoothly as a power
of capacity, ``gain ~ C ** power`` (:func:`power_gain`): no threshold, and no capacity where
the gain vanishes, the shape transfer scaling laws predict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The ultrasmall preset's backbone sizes: B0 ~3.6 M down to B-7 ~17 k parameters, a factor
# of ~2.15 per step (each step roughly halves FLOPs).
ULTRASMALL_LOG10_PARAMS = np.linspace(np.log10(3.6e6), np.log10(1.7e4), 8)


def true_gain(
    x: np.ndarray, *, x0: float | None, plateau: float, slope: float, x_mid: float = 5.3
) -> np.ndarray:
    """The noiseless gain at log10 capacity ``x`` (hinge if ``x0`` is given, else a line)."""
    x = np.asarray(x, dtype=float)
    if x0 is None:
        return plateau + slope * (x - x_mid)
    return plateau + slope * np.maximum(0.0, x - x0)


def power_gain(x: np.ndarray, exponent: float, rise: float, x_min: float, x_max: float):
    """A gain growing as ``C ** exponent`` from 0 at ``x_min`` to ``rise`` at ``x_max``.

    ``x`` is log10 capacity; a positive exponent is convex in log capacity (each decade adds
    more than the last).
    """
    x = np.asarray(x, dtype=float)
    span = 10.0 ** (exponent * (x_max - x_min)) - 1.0
    return rise * (10.0 ** (exponent * (x - x_min)) - 1.0) / span


def simulate_gain_arrays(
    rng: np.random.Generator,
    *,
    log10_capacity: np.ndarray = ULTRASMALL_LOG10_PARAMS,
    n_seeds: int = 3,
    x0: float | None = 5.0,
    plateau: float = 0.0,
    slope: float = 0.1,
    seed_sd: float = 0.015,
    power: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-seed paired gains: ``(x, gain, capacity_index)``, each of length caps x seeds.

    ``seed_sd`` is the run-to-run SD of one run's metric; a paired gain's noise SD is
    ``sqrt(2) * seed_sd`` since it differences two independent runs. With ``power``, the
    gain grows as ``C ** power`` by the hinge's total rise (``slope`` per decade above 100 k).
    """
    caps = np.asarray(log10_capacity, dtype=float)
    x = np.repeat(caps, n_seeds)
    idx = np.repeat(np.arange(len(caps)), n_seeds)
    noise = seed_sd * (rng.standard_normal(x.size) - rng.standard_normal(x.size))
    return x, _gain(x, caps, x0, plateau, slope, power) + noise, idx


def _gain(x, caps, x0, plateau, slope, power) -> np.ndarray:
    if power is None:
        return true_gain(x, x0=x0, plateau=plateau, slope=slope)
    rise = slope * (caps.max() - 5.0)
    return plateau + power_gain(x, power, rise, caps.min(), caps.max())


def simulate_study_table(
    rng: np.random.Generator,
    *,
    x0: float | None = 5.0,
    slope: float = 0.1,
    seed_sd: float = 0.015,
    n_seeds: int = 3,
    family: str = "efficientnet_b0",
    eval_domains: tuple[str, ...] = ("synth_a/rgb", "synth_a/ir"),
    inits: tuple[str, ...] = ("random", "imagenet"),
    power: float | None = None,
) -> pd.DataFrame:
    """A tidy results table (one selected trial per cell) of a synthetic study.

    Every pretrained init gets the same true gain curve on every evaluation domain; the
    metric is ``map50`` and the selection value is the in-domain one. Useful as a hand-made
    ``--from`` file in tests and demos. ``power`` replaces the hinge by a gain growing as
    ``C ** power`` with the same total rise (no threshold).
    """
    rows = []
    log10_caps = ULTRASMALL_LOG10_PARAMS
    train = eval_domains[0]
    for k, xc in enumerate(log10_caps):
        phi = -k
        base = 0.15 + 0.08 * (xc - log10_caps.min())
        for init in inits:
            curve = _gain(xc, log10_caps, x0, 0.0, slope, power)
            gain = 0.0 if init == "random" else float(curve)
            for seed in range(n_seeds):
                in_domain = base + gain + seed_sd * rng.standard_normal()
                for domain in eval_domains:
                    # Shift domains are harder but share the gain structure.
                    shift = 0.0 if domain == train else -0.05
                    value = in_domain if domain == train else in_domain + shift
                    value += 0.0 if domain == train else 0.5 * seed_sd * rng.standard_normal()
                    rows.append(
                        {
                            "study": "simulated",
                            "trial_id": f"{family}_{phi}_{init}_{seed}",
                            "family": family,
                            "phi": phi,
                            "label": f"B{phi}" if phi else "B0",
                            "init": init,
                            "train_domain": train,
                            "eval_domain": domain,
                            "seed": seed,
                            "backbone_params": round(10**xc),
                            "detector_params": round(10**xc) + 250_000,
                            "macs": round(10**xc) * 120,
                            "selection_metric": "val/map50",
                            "selection_value": in_domain,
                            "map50": value,
                        }
                    )
    return pd.DataFrame(rows)
