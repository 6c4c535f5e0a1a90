"""Figures (matplotlib, Agg backend, PNG files).

* ``gain_<family>_<train>_<eval>.png``: gain against capacity (log x) per init with CIs, the
  zero line, the fitted hinge and its breakpoint CI band when a threshold is found (else the
  best no-threshold model, dotted: constant, line or smooth power law): the paper's
  Figure 1, for each family x domain.
* ``metric_<family>_<train>_<eval>.png``: the metric of every variant (ordered by capacity)
  per init, mean over seeds with min-max bars: the paper's Figures 3-5.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from capstudy.analysis.threshold import VERDICT_THRESHOLD

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_CAPACITY_LABELS = {
    "backbone_params": "backbone parameters",
    "detector_params": "detector parameters",
    "macs": "MACs",
}


def human(value: float) -> str:
    """Capacity in short form: 117k, 3.6M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


def slug(*parts: str) -> str:
    """A file-name-safe name from parts (domains contain slashes)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(str(p) for p in parts)).strip("-")


def gain_figure(
    summary: pd.DataFrame,
    fits: pd.DataFrame | None,
    capacity: str,
    metric: str,
    path: Path,
) -> Path:
    """Gain vs capacity for one family x train x eval domain (all inits on one axis)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.axhline(0.0, color="black", lw=0.8)
    lo_x, hi_x = summary[capacity].min(), summary[capacity].max()
    for k, (init, part) in enumerate(summary.groupby("init", sort=True)):
        color = _COLORS[k % len(_COLORS)]
        part = part.sort_values(capacity)
        err = np.vstack([part["gain"] - part["ci_lo"], part["ci_hi"] - part["gain"]])
        ax.errorbar(
            part[capacity],
            part["gain"],
            yerr=np.nan_to_num(err),
            fmt="o",
            color=color,
            capsize=3,
            label=f"{init} (mean, 95% CI)",
        )
        fit = _fit_row(fits, init)
        if fit is not None:
            _draw_model(ax, fit, lo_x, hi_x, color)
    ax.set_xscale("log")
    ax.set_xlabel(_CAPACITY_LABELS.get(capacity, capacity))
    ax.set_ylabel(f"gain in {metric} over random init")
    first = summary.iloc[0]
    ax.set_title(f"{first['family']}: train {first['train_domain']}, eval {first['eval_domain']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _fit_row(fits: pd.DataFrame | None, init: str) -> pd.Series | None:
    if fits is None or fits.empty:
        return None
    rows = fits[fits["init"] == init]
    return rows.iloc[0] if len(rows) else None


def _draw_model(ax, fit: pd.Series, lo_x: float, hi_x: float, color: str) -> None:
    """The fitted hinge with its breakpoint CI band, or the better no-threshold model."""
    xs = np.linspace(np.log10(lo_x), np.log10(hi_x), 200)
    if fit["verdict"] == VERDICT_THRESHOLD:
        ys = fit["plateau"] + fit["slope"] * np.maximum(0.0, xs - fit["x0"])
        ax.plot(10**xs, ys, color=color, lw=1.5)
        ax.axvspan(fit["threshold_lo"], fit["threshold_hi"], color=color, alpha=0.12)
        ax.axvline(
            fit["threshold"],
            color=color,
            ls="--",
            lw=1,
            label=f"{fit['init']}: threshold ~{human(fit['threshold'])} (band: 95% CI)",
        )
    elif fit["best_model"] in ("linear", "constant", "smooth"):
        if fit["best_model"] == "linear":
            ys = fit["linear_intercept"] + fit["linear_slope"] * xs
        elif fit["best_model"] == "smooth":
            power = 10.0 ** (-fit["smooth_exponent"] * (xs - fit["smooth_center"]))
            ys = fit["smooth_level"] + fit["smooth_coef"] * power
        else:
            ys = np.full_like(xs, fit["constant_level"])
        ax.plot(
            10**xs, ys, color=color, ls=":", lw=1.5, label=f"no threshold ({fit['best_model']})"
        )


def metric_figure(selected: pd.DataFrame, capacity: str, metric: str, path: Path) -> Path:
    """Metric per variant (x: labels ordered by capacity) per init, mean and min-max."""
    agg = (
        selected.groupby(["init", "label"], sort=True)
        .agg(
            cap=(capacity, "median"), mean=(metric, "mean"), lo=(metric, "min"), hi=(metric, "max")
        )
        .reset_index()
    )
    order = agg.groupby("label")["cap"].median().sort_values().index.tolist()
    pos = {label: i for i, label in enumerate(order)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, (init, part) in enumerate(agg.groupby("init", sort=True)):
        part = part.assign(pos=part["label"].map(pos)).sort_values("pos")
        err = np.vstack([part["mean"] - part["lo"], part["hi"] - part["mean"]])
        ax.errorbar(
            part["pos"],
            part["mean"],
            yerr=err,
            marker="o",
            capsize=3,
            color=_COLORS[k % len(_COLORS)],
            label=init,
        )
    ax.set_xticks(range(len(order)), order, rotation=45)
    ax.set_xlabel(f"variant (ordered by {_CAPACITY_LABELS.get(capacity, capacity)})")
    ax.set_ylabel(f"{metric} (mean over seeds, min-max)")
    first = selected.iloc[0]
    ax.set_title(f"{first['family']}: train {first['train_domain']}, eval {first['eval_domain']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_figures(
    selected: pd.DataFrame,
    summary: pd.DataFrame,
    fits: pd.DataFrame | None,
    capacity: str,
    metric: str,
    out_dir: Path,
) -> dict[tuple[str, str, str], dict[str, Path]]:
    """Write every figure; returns {(family, train, eval): {"gain": path, "metric": path}}."""
    out: dict[tuple[str, str, str], dict[str, Path]] = {}
    keys3 = ["family", "train_domain", "eval_domain"]
    for key, part in selected.groupby(keys3, sort=True):
        name = slug(*key)
        paths = {"metric": metric_figure(part, capacity, metric, out_dir / f"metric_{name}.png")}
        # A study without a pretrained init (or without seed pairs) has no gains at all.
        gains_part = (
            summary
            if summary.empty
            else summary[(summary[keys3] == pd.Series(key, index=keys3)).all(axis=1)]
        )
        if not gains_part.empty:
            fit_part = None
            if fits is not None and not fits.empty:
                fit_part = fits[(fits[keys3] == pd.Series(key, index=keys3)).all(axis=1)]
            paths["gain"] = gain_figure(
                gains_part, fit_part, capacity, metric, out_dir / f"gain_{name}.png"
            )
        out[key] = paths
    return out
