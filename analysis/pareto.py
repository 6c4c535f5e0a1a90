"""The trade-off view: metric against capacity per init, the Pareto front marked.

One figure per train x evaluation domain (``pareto/pareto_<train>_<eval>.png``): every variant
of every family and init as a point (mean over seeds of the selected trials), labelled (B-4,
S-2); the front — points no other point beats on both capacity (lower) and metric (higher) —
joined by a line. With ``--capacity macs`` a second panel puts the same points against the
measured CPU latency per image (batch 1), when the launch measured it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from capstudy.analysis.figures import slug
from capstudy.analysis.paper import CAPACITY_NAMES, init_color, with_labels

_MARKERS = {"efficientnet_b0": "o", "mobilenetv3_small": "s"}


def front(points: pd.DataFrame, x: str, y: str, mode: str = "max") -> pd.Series:
    """Boolean mask of the Pareto front: no other point has lower-or-equal ``x`` and a better
    ``y`` with one of them strictly better. ``mode`` is the direction of ``y``."""
    sign = 1.0 if mode == "max" else -1.0
    xs, ys = points[x].to_numpy(float), sign * points[y].to_numpy(float)
    mask = []
    for i in range(len(points)):
        dominated = ((xs <= xs[i]) & (ys >= ys[i]) & ((xs < xs[i]) | (ys > ys[i]))).any()
        mask.append(not dominated)
    return pd.Series(mask, index=points.index)


def points_table(
    selected: pd.DataFrame, capacity: str, metric: str, latency: dict[str, float] | None = None
) -> pd.DataFrame:
    """Per family x variant x init x domains: capacity, mean metric, latency (ms) if known."""
    sel = with_labels(selected)
    keys = ["train_domain", "eval_domain", "family", "label", "init"]
    pts = sel.groupby(keys).agg(capacity=(capacity, "median"), metric=(metric, "mean"))
    pts = pts.reset_index()
    pts["latency_ms"] = pts["label"].map(latency or {}).astype(float)
    return pts


def pareto_figures(
    selected: pd.DataFrame,
    capacity: str,
    metric: str,
    out_dir: Path,
    mode: str = "max",
    latency: dict[str, float] | None = None,
) -> list[Path]:
    """Write one Pareto figure per train x eval domain; returns the paths."""
    pts = points_table(selected, capacity, metric, latency)
    files = []
    for (train, ev), part in pts.groupby(["train_domain", "eval_domain"], sort=True):
        with_latency = capacity == "macs" and part["latency_ms"].notna().any()
        n = 2 if with_latency else 1
        fig, axes = plt.subplots(1, n, figsize=(6.4 * n, 4.4), squeeze=False)
        _panel(axes[0][0], part, "capacity", CAPACITY_NAMES.get(capacity, capacity), metric, mode)
        if with_latency:
            _panel(
                axes[0][1],
                part.dropna(subset=["latency_ms"]),
                "latency_ms",
                "CPU latency per image, batch 1 (ms)",
                metric,
                mode,
            )
        fig.suptitle(f"trade-off: train {train}, eval {ev}", fontsize=10)
        path = out_dir / f"pareto_{slug(train, ev)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def _panel(ax, part: pd.DataFrame, x: str, xlabel: str, metric: str, mode: str) -> None:
    on_front = front(part, x, "metric", mode)
    for k, (init, rows) in enumerate(part.groupby("init", sort=True)):
        color = init_color(init, k)
        for family, fam_rows in rows.groupby("family"):
            ax.scatter(
                fam_rows[x],
                fam_rows["metric"],
                color=color,
                marker=_MARKERS.get(family, "^"),
                s=30,
                label=f"{init} ({family})",
            )
    best = part[on_front].sort_values(x)
    ax.step(
        best[x], best["metric"], where="post", color="black", lw=1, alpha=0.7, label="Pareto front"
    )
    ax.scatter(best[x], best["metric"], facecolors="none", edgecolors="black", s=90, lw=1)
    # Only the front is labelled: it is what a reader chooses from, and labelling every point
    # of three inits and two families makes the labels unreadable.
    for _, r in best.iterrows():
        ax.annotate(
            f"{r['label']} {r['init']}",
            (r[x], r["metric"]),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
