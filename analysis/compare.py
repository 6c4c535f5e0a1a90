"""Ablations across studies: ``capstudy analyze --from A --from B`` (or ``--study A --study B``).

Two studies that differ in one setting (say the pretraining image size) are analyzed each on
its own (a full report in ``<out>/<name>/``); then, per variant x train x eval domain x init,
the difference of their gains over random init (A - B) with a 95% Welch t interval: the two
studies' seeds are independent, so the difference's variance is the sum of each mean's.
The comparison has its own ``report.md``/``report.html`` in the same format, led by a figure
of the differences against capacity and one line per variant.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from scipy import stats

from capstudy.analysis.headline import _md_table
from capstudy.analysis.paper import init_color, with_labels

KEYS = ["family", "phi", "train_domain", "eval_domain", "init"]


def _moments(per_seed: pd.DataFrame, capacity: str) -> pd.DataFrame:
    g = per_seed.groupby(KEYS)
    out = g.agg(mean=("gain", "mean"), var=("gain", "var"), n=("gain", "size"))
    out["capacity"] = g[capacity].median() if capacity in per_seed else math.nan
    return out.reset_index()


def gain_differences(
    per_seed_a: pd.DataFrame, per_seed_b: pd.DataFrame, capacity: str, level: float = 0.95
) -> pd.DataFrame:
    """Per variant x domains x init: gain in A, gain in B, A - B and its Welch t CI.

    A variant needs two seeds in both studies for an interval (else the CI is empty).
    """
    a, b = _moments(per_seed_a, capacity), _moments(per_seed_b, capacity)
    both = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    rows = []
    for _, r in both.iterrows():
        diff = r["mean_a"] - r["mean_b"]
        va, vb = r["var_a"] / r["n_a"], r["var_b"] / r["n_b"]
        lo = hi = p = math.nan
        if r["n_a"] >= 2 and r["n_b"] >= 2 and va + vb > 0:
            se = math.sqrt(va + vb)
            df = (va + vb) ** 2 / (va**2 / (r["n_a"] - 1) + vb**2 / (r["n_b"] - 1))
            q = stats.t.ppf(0.5 + level / 2, df)
            lo, hi = diff - q * se, diff + q * se
            p = 2 * stats.t.sf(abs(diff) / se, df)
        rows.append(
            {
                **{k: r[k] for k in KEYS},
                "capacity": r["capacity_a"],
                "gain_a": r["mean_a"],
                "gain_b": r["mean_b"],
                "seeds_a": r["n_a"],
                "seeds_b": r["n_b"],
                "difference": diff,
                "ci_lo": lo,
                "ci_hi": hi,
                "p": p,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out = with_labels(out.assign(label=""))
    return out.sort_values(["family", "train_domain", "eval_domain", "init", "capacity"])


def difference_figure(diff: pd.DataFrame, names: tuple[str, str], path: Path) -> Path:
    """Gain difference (A - B) against capacity, one panel per family, per init."""
    families = sorted(diff["family"].unique())
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.8), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        part = diff[diff["family"] == family]
        ax.axhline(0, color="black", lw=0.8)
        for k, ((init, train, ev), rows) in enumerate(
            part.groupby(["init", "train_domain", "eval_domain"])
        ):
            rows = rows.sort_values("capacity")
            err = [rows["difference"] - rows["ci_lo"], rows["ci_hi"] - rows["difference"]]
            ax.errorbar(
                rows["capacity"],
                rows["difference"],
                yerr=[e.fillna(0) for e in err],
                fmt="o-",
                capsize=2,
                ms=4,
                color=init_color(init, k),
                label=f"{init}, {train} → {ev}",
            )
        ax.set_xscale("log")
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("capacity")
        ax.set_ylabel(f"gain({names[0]}) − gain({names[1]})")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_comparison(
    diff: pd.DataFrame, names: tuple[str, str], metric: str, out: Path, reports: list[Path]
) -> list[Path]:
    """Write tables/differences.csv, figures/difference.png, report.md and report.html."""
    (out / "tables").mkdir(parents=True, exist_ok=True)
    table_path = out / "tables" / "differences.csv"
    diff.to_csv(table_path, index=False)
    fig = difference_figure(diff, names, out / "figures" / "difference.png") if len(diff) else None
    shown = (
        diff[
            [
                "label",
                "init",
                "train_domain",
                "eval_domain",
                "gain_a",
                "gain_b",
                "difference",
                "ci_lo",
                "ci_hi",
                "p",
            ]
        ]
        if len(diff)
        else diff
    )
    shown = shown.rename(columns={"gain_a": f"gain {names[0]}", "gain_b": f"gain {names[1]}"})
    title = f"capstudy comparison: {names[0]} vs {names[1]}"
    intro = (
        f"Gain over random init in {metric}, per variant, in each study and their difference "
        f"({names[0]} − {names[1]}) with a 95% Welch t interval over the two studies' "
        "independent seeds. Each study's own report: "
        + ", ".join(p.relative_to(out).as_posix() for p in reports)
    )
    md = [f"# {title}", "", "## Headline", ""]
    md += [f"![difference]({fig.relative_to(out).as_posix()})", ""] if fig else []
    md += [_md_table(shown) or "No variant is in both studies.", "", "## Method", "", intro, ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    img = ""
    if fig:
        data = base64.b64encode(fig.read_bytes()).decode("ascii")
        src = f"data:image/png;base64,{data}"
        img = f"<figure id='headline-figure'><img alt='difference' src='{src}'></figure>"
    body = shown.to_html(index=False, border=0, table_id="verdicts", float_format="%.4g")
    html_text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><section id='headline'><h2>Headline</h2>{img}{body}</section>"
        f"<h2>Method</h2><p>{intro}</p></body></html>"
    )
    (out / "report.html").write_text(html_text, encoding="utf-8")
    return [table_path, *([fig] if fig else []), out / "report.md", out / "report.html"]
