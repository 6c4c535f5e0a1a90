"""The paper's figures and tables, ready to paste.

* ``paper/figure1.{png,pdf,svg}``: gain vs capacity, one column per family (side by side),
  one row per train -> eval domain, every init, 95% CIs, the zero line and each found
  threshold marked (dashed line, CI band).
* ``paper/metrics.{png,pdf,svg}``: the metric of every variant per init, same panel layout.
* ``paper/variants.{md,tex}``: label, width, depth, backbone params, MACs, detector params.
* ``paper/results.{md,tex}``: per variant and evaluation domain, the metric of each init
  (mean over seeds) and each pretrained init's gain with its 95% CI.

Labels come from family and phi (``B-4``, ``S-2``) wherever a table has no real label.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from capstudy.analysis.figures import human
from capstudy.variants import make_variant

FORMATS = ("png", "pdf", "svg")
_COLORS = {"imagenet": "tab:blue", "imagenet_coco": "tab:green", "random": "tab:gray"}
_FAMILY_NAMES = {"efficientnet_b0": "EfficientNet-B0", "mobilenetv3_small": "MobileNetV3-Small"}
CAPACITY_NAMES = {
    "backbone_params": "backbone parameters",
    "detector_params": "detector parameters",
}
CAPACITY_NAMES["macs"] = "MACs"


def paper_label(family: str, phi, label: str = "") -> str:
    """The paper label; built from family and phi when ``label`` is missing or a fallback."""
    if label and "phi=" not in str(label) and str(label) != "nan":
        return str(label)
    try:
        return make_variant(str(family), int(phi)).label
    except (KeyError, ValueError, TypeError):
        return f"{family} phi={phi}"


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``label`` column holds paper labels."""
    out = df.copy()
    old = out["label"] if "label" in out else pd.Series([""] * len(out), index=out.index)
    out["label"] = [paper_label(f, p, lab) for f, p, lab in zip(out["family"], out["phi"], old)]
    return out


def init_color(init: str, k: int) -> str:
    """One colour per init across every figure (random grey, ImageNet blue, ImageNet→COCO green)."""
    return _COLORS.get(init, plt.get_cmap("tab10")(k % 10))


def _panels(df: pd.DataFrame):
    """(families, domain pairs) of the panel grid, in a stable order."""
    families = sorted(df["family"].unique())
    pairs = sorted({(t, e) for t, e in zip(df["train_domain"], df["eval_domain"])})
    return families, pairs


def _grid(n_rows: int, n_cols: int):
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False, sharey="row"
    )
    return fig, axes


def _save_all(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    out = []
    for ext in FORMATS:
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150 if ext == "png" else None)
        out.append(path)
    plt.close(fig)
    return out


def figure1(
    summary: pd.DataFrame, fits: pd.DataFrame | None, capacity: str, metric: str, out: Path
) -> list[Path]:
    """The multi-panel Figure 1 (gain vs capacity); [] when there are no gains."""
    if summary.empty:
        return []
    families, pairs = _panels(summary)
    fig, axes = _grid(len(pairs), len(families))
    for r, (train, ev) in enumerate(pairs):
        for c, family in enumerate(families):
            ax = axes[r][c]
            part = summary[
                (summary["family"] == family)
                & (summary["train_domain"] == train)
                & (summary["eval_domain"] == ev)
            ]
            ax.axhline(0.0, color="black", lw=0.8)
            for k, (init, rows) in enumerate(part.groupby("init", sort=True)):
                rows = rows.sort_values(capacity)
                err = np.vstack([rows["gain"] - rows["ci_lo"], rows["ci_hi"] - rows["gain"]])
                color = init_color(init, k)
                ax.errorbar(
                    rows[capacity],
                    rows["gain"],
                    yerr=np.nan_to_num(err),
                    fmt="o-",
                    color=color,
                    capsize=2,
                    ms=4,
                    lw=1,
                    label=init,
                )
                _mark_threshold(ax, fits, family, train, ev, init, color)
            ax.set_xscale("log")
            ax.grid(alpha=0.3, which="both")
            ax.set_title(f"{_FAMILY_NAMES.get(family, family)}\n{train} → {ev}", fontsize=9)
            if r == len(pairs) - 1:
                ax.set_xlabel(CAPACITY_NAMES.get(capacity, capacity))
            if c == 0:
                ax.set_ylabel(f"gain in {metric}")
            if r == 0 and c == len(families) - 1:
                ax.legend(fontsize=7)
    return _save_all(fig, out / "figure1")


def _mark_threshold(ax, fits, family, train, ev, init, color) -> None:
    if fits is None or fits.empty:
        return
    rows = fits[
        (fits["family"] == family)
        & (fits["train_domain"] == train)
        & (fits["eval_domain"] == ev)
        & (fits["init"] == init)
    ]
    if rows.empty or rows.iloc[0]["verdict"] != "threshold":
        return
    row = rows.iloc[0]
    ax.axvspan(row["threshold_lo"], row["threshold_hi"], color=color, alpha=0.12)
    ax.axvline(row["threshold"], color=color, ls="--", lw=1)
    ax.annotate(
        human(row["threshold"]),
        (row["threshold"], ax.get_ylim()[1]),
        fontsize=7,
        color=color,
        ha="left",
        va="top",
    )


def metrics_figure(selected: pd.DataFrame, capacity: str, metric: str, out: Path) -> list[Path]:
    """Metric per variant per init (mean over seeds, min-max), panels as Figure 1."""
    sel = with_labels(selected)
    families, pairs = _panels(sel)
    fig, axes = _grid(len(pairs), len(families))
    for r, (train, ev) in enumerate(pairs):
        for c, family in enumerate(families):
            ax = axes[r][c]
            part = sel[
                (sel["family"] == family)
                & (sel["train_domain"] == train)
                & (sel["eval_domain"] == ev)
            ]
            agg = (
                part.groupby(["init", "label"])
                .agg(
                    cap=(capacity, "median"),
                    m=(metric, "mean"),
                    lo=(metric, "min"),
                    hi=(metric, "max"),
                )
                .reset_index()
            )
            order = agg.groupby("label")["cap"].median().sort_values().index.tolist()
            pos = {lab: i for i, lab in enumerate(order)}
            for k, (init, rows) in enumerate(agg.groupby("init", sort=True)):
                rows = rows.assign(x=rows["label"].map(pos)).sort_values("x")
                err = np.vstack([rows["m"] - rows["lo"], rows["hi"] - rows["m"]])
                ax.errorbar(
                    rows["x"],
                    rows["m"],
                    yerr=err,
                    marker="o",
                    ms=4,
                    capsize=2,
                    color=init_color(init, k),
                    label=init,
                )
            ax.set_xticks(range(len(order)), order, fontsize=8)
            ax.grid(alpha=0.3)
            ax.set_title(f"{_FAMILY_NAMES.get(family, family)}\n{train} → {ev}", fontsize=9)
            if c == 0:
                ax.set_ylabel(metric)
            if r == 0 and c == len(families) - 1:
                ax.legend(fontsize=7)
    return _save_all(fig, out / "metrics")


def variants_table(selected: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: label, width, depth, backbone params, MACs, detector params."""
    sel = with_labels(selected)
    rows = []
    for (family, phi), part in sel.groupby(["family", "phi"], sort=True):
        try:
            scale = make_variant(str(family), int(phi)).scale
            width, depth = f"{scale.width:.3f}", f"{scale.depth:.3f}"
        except (KeyError, ValueError):
            width = depth = ""
        rows.append(
            {
                "label": part["label"].iloc[0],
                "family": family,
                "width": width,
                "depth": depth,
                "backbone_params": part["backbone_params"].median(),
                "macs": part["macs"].median(),
                "detector_params": part["detector_params"].median(),
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["family", "backbone_params"], ascending=[True, False])


def results_table(selected: pd.DataFrame, summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per variant x train x eval domain: metric per init (mean over seeds), gains with CIs."""
    sel = with_labels(selected)
    keys = ["family", "label", "train_domain", "eval_domain"]
    cap = sel.groupby(keys)["backbone_params"].median().rename("capacity")
    wide = sel.pivot_table(index=keys, columns="init", values=metric, aggfunc="mean")
    # The baseline first: the paper reads random, then each pretrained init.
    wide = wide[sorted(wide.columns, key=lambda c: (c != "random", c))]
    wide.columns = [f"{metric} {c}" for c in wide.columns]
    out = pd.concat([cap, wide], axis=1).reset_index()
    if not summary.empty:
        gains = with_labels(summary)
        gains["text"] = [
            f"{g:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for g, lo, hi in zip(gains["gain"], gains["ci_lo"], gains["ci_hi"])
        ]
        g = gains.pivot_table(index=keys, columns="init", values="text", aggfunc="first")
        g.columns = [f"gain {c}" for c in g.columns]
        out = out.merge(g.reset_index(), on=keys, how="left")
    out = out.sort_values(
        ["family", "train_domain", "eval_domain", "capacity"], ascending=[True, True, True, False]
    )
    return out.drop(columns=["capacity"])


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """A Markdown table (pipes escaped)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, caption: str) -> str:
    """A booktabs LaTeX table (special characters escaped)."""

    def esc(text: str) -> str:
        for a, b in (
            ("\\", r"\textbackslash{}"),
            ("&", r"\&"),
            ("%", r"\%"),
            ("_", r"\_"),
            ("#", r"\#"),
            ("$", r"\$"),
        ):
            text = text.replace(a, b)
        return text

    cols = "l" * 2 + "r" * (len(df.columns) - 2)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule"]
    lines.append(" & ".join(esc(str(c)) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for row in df.itertuples(index=False):
        lines.append(" & ".join(esc(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{esc(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_paper(
    selected: pd.DataFrame,
    summary: pd.DataFrame,
    fits: pd.DataFrame | None,
    capacity: str,
    metric: str,
    out: Path,
) -> list[Path]:
    """Write every paper figure and table under ``out``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files = figure1(summary, fits, capacity, metric, out)
    files += metrics_figure(selected, capacity, metric, out)
    tables = {
        "variants": (variants_table(selected), "Variants: width and depth multipliers, capacity."),
        "results": (
            results_table(selected, summary, metric),
            f"{metric} per init (mean over seeds) and gain over random init (95% CI).",
        ),
    }
    for name, (df, caption) in tables.items():
        (out / f"{name}.md").write_text(to_markdown(df), encoding="utf-8")
        (out / f"{name}.tex").write_text(to_latex(df, caption), encoding="utf-8")
        files += [out / f"{name}.md", out / f"{name}.tex"]
    return files
