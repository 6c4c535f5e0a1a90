"""The written outputs: CSV tables, plain-language conclusions, Markdown and HTML reports.

The HTML report is self-contained (figures embedded as base64 PNG) so it can be mailed or
attached to an MLflow run and opened anywhere; the Markdown report links the PNG files next
to it.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from capstudy.analysis.intervals import MIN_RELIABLE_SEEDS
from capstudy.analysis.sequential import design_statement
from capstudy.analysis.shared import factor_summary
from capstudy.analysis.threshold import MIN_CAPACITIES, VERDICT_INSUFFICIENT, VERDICT_THRESHOLD

_UNITS = {"backbone_params": "backbone parameters", "detector_params": "detector parameters"}
_UNITS["macs"] = "MACs"
GAIN_COLUMNS = [
    "family",
    "train_domain",
    "eval_domain",
    "init",
    "label",
    "variant_key",
    "class_set",
    "n_seeds",
    "gain",
    "ci_lo",
    "ci_hi",
    "p",
    "p_holm",
    "seed_sd",
    "within_noise",
    "significant",
]
THRESHOLD_COLUMNS = [
    "family",
    "train_domain",
    "eval_domain",
    "init",
    "verdict",
    "direction",
    "best_model",
    "threshold",
    "threshold_lo",
    "threshold_hi",
    "plateau",
    "p_vs_constant",
    "p_vs_linear",
    "p_vs_smooth",
    "p_threshold",
    "p_threshold_adj",
    "delta_aicc",
    "first_significant_label",
    "first_significant_status",
]
_DIRECTION = {1: "rises", -1: "falls"}


def fmt(value: object) -> str:
    """Compact cell text: 3 significant digits for floats, '' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def reliability_lines(min_seeds: int) -> list[str]:
    """A warning when some variant has fewer seeds than the intervals need to be trusted."""
    if min_seeds >= MIN_RELIABLE_SEEDS or min_seeds == 0:
        return []
    return [
        f"**Gain CIs are unreliable here**: some variants have only {min_seeds} seed(s) "
        f"(at least {MIN_RELIABLE_SEEDS} are needed to check the seed noise the interval "
        "assumes), so no significant capacity is named. Run more seeds."
    ]


def class_set_lines(summary: pd.DataFrame) -> list[str]:
    """Which classes each evaluation domain was scored on, when the runs recorded it."""
    if summary.empty or "class_set" not in summary.columns:
        return []
    pairs = summary.loc[summary["class_set"].astype(str) != "", ["train_domain", "eval_domain"]]
    if pairs.empty:
        return []
    sets = summary.loc[pairs.index].drop_duplicates(["train_domain", "eval_domain"])
    text = "; ".join(
        f"train {r.train_domain} -> eval {r.eval_domain}: {r.class_set}" for r in sets.itertuples()
    )
    return [f"Classes scored (those both domains annotate): {text}."]


def study_statement(fits: pd.DataFrame, min_seeds: int) -> str:
    """How many threshold tests ran, how their error rate is controlled, what was found."""
    n_tests = int(fits["p_threshold"].notna().sum())
    n_found = int((fits["verdict"] == VERDICT_THRESHOLD).sum())
    seeds = (
        ""
        if min_seeds >= MIN_RELIABLE_SEEDS
        else f" With {min_seeds} seed(s) per variant the gain CIs are unreliable and no "
        "significant capacity is named."
    )
    return (
        f"The study ran {n_tests} threshold test(s) (one per family, train domain, eval "
        f"domain and init with at least {MIN_CAPACITIES} capacities); their false discovery "
        f"rate is controlled by Benjamini-Hochberg adjusted p-values (p_threshold_adj). "
        f"{n_found} threshold(s) found.{seeds}"
    )


def conclusion(row: pd.Series, metric: str) -> str:
    """One plain-language paragraph for one family x train x eval domain x init."""
    unit = _UNITS.get(row["capacity"], row["capacity"])
    classes = row.get("class_set", "")
    head = (
        f"**{row['family']}, {row['init']} vs random, train {row['train_domain']}, "
        f"eval {row['eval_domain']}**{f' (classes: {classes})' if classes else ''}: "
    )
    first = _first_significant(row, unit)
    if row["verdict"] == VERDICT_INSUFFICIENT:
        return (
            f"{head}too few capacities ({row['n_capacities']}) to fit a threshold "
            f"(at least {MIN_CAPACITIES} are needed, two on each side of it). {first}"
        )
    tests = (
        f"hinge vs constant p = {row['p_vs_constant']:.3g}, vs straight line "
        f"p = {row['p_vs_linear']:.3g}, vs smooth power law p = {row['p_vs_smooth']:.3g}; "
        f"adjusted across the study's tests p = {row['p_threshold_adj']:.3g}"
    )
    if row["verdict"] == VERDICT_THRESHOLD:
        zero = row["plateau_lo"] <= 0 <= row["plateau_hi"]
        plateau = (
            f"{row['plateau']:+.3g} (95% CI {row['plateau_lo']:+.3g} to {row['plateau_hi']:+.3g}"
            f"{', indistinguishable from zero' if zero else ', not zero'})"
        )
        return (
            f"{head}a capacity threshold at about {row['threshold']:,.0f} {unit} "
            f"(95% CI {row['threshold_lo']:,.0f} to {row['threshold_hi']:,.0f}). Below it the "
            f"gain in {metric} is flat at {plateau}; above it the gain "
            f"{_DIRECTION[int(row['direction'])]} by {abs(row['slope']):.3g} per tenfold "
            f"capacity. The data prefer this kink to a constant, a line and a smooth power "
            f"law ({tests}; it is {row['delta_aicc']:.1f} AICc units below the best of "
            f"them). {first}"
        )
    return (
        f"{head}no threshold found: the gain is described as well by {_shape(row)} ({tests}; "
        f"AICc difference hinge vs best no-threshold model {row['delta_aicc']:+.1f}, positive "
        f"would favour the hinge). {first}"
    )


def _shape(row: pd.Series) -> str:
    if row["best_model"] == "linear":
        return f"a straight line in log capacity (slope {row['linear_slope']:+.3g} per tenfold)"
    if row["best_model"] == "smooth":
        return f"a smooth power law in capacity (exponent {row['smooth_exponent']:.2g})"
    return f"a constant gain of {row['constant_level']:+.3g}"


def _first_significant(row: pd.Series, unit: str) -> str:
    status = str(row.get("first_significant_status", ""))
    if status.startswith("unreliable"):
        return (
            f"No significant capacity is named: gain CIs are unreliable with fewer than "
            f"{MIN_RELIABLE_SEEDS} seeds."
        )
    label = row.get("first_significant_label", "")
    if not label:
        return "No capacity's gain differs from zero (t-tests, Holm-adjusted across capacities)."
    sign = "above" if row["first_significant_sign"] > 0 else "below"
    return (
        f"The smallest capacity whose gain differs from zero (Holm-adjusted p = "
        f"{row['first_significant_p_holm']:.3g}) is {label} "
        f"({row['first_significant_capacity']:,.0f} {unit}; gain {sign} zero)."
    )


def markdown_table(df: pd.DataFrame, columns: list[str]) -> str:
    """A GitHub-flavoured Markdown table of the given columns (missing ones skipped)."""
    cols = [c for c in columns if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in df[cols].iterrows():
        cells = (fmt(row[c]).replace("|", "\\|") for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path: Path, header: list[str], sections: list[tuple[str, str]]) -> Path:
    """Write the Markdown report: header lines, then (title, markdown body) sections."""
    text = "\n".join(header) + "\n\n"
    text += "\n\n".join(f"## {title}\n\n{body}" for title, body in sections) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def write_html(
    path: Path,
    title: str,
    header: list[str],
    conclusions: list[str],
    tables: list[tuple[str, pd.DataFrame, list[str]]],
    figures: list[Path],
    methods: str,
) -> Path:
    """Write the self-contained HTML report (figures inlined as base64 PNG)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "".join(f"<p>{_inline(line)}</p>" for line in header[1:] if line.strip()),
        "<h2>Conclusions</h2><ul>",
        "".join(f"<li>{_inline(c)}</li>" for c in conclusions),
        "</ul>",
    ]
    for name, df, cols in tables:
        shown = df[[c for c in cols if c in df.columns]].map(fmt) if not df.empty else df
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(shown.to_html(index=False, escape=True, border=0) if not df.empty else "")
    parts.append("<h2>Figures</h2>")
    for fig in figures:
        data = base64.b64encode(fig.read_bytes()).decode("ascii")
        parts.append(
            f"<figure><img alt='{html.escape(fig.name)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(fig.name)}</figcaption></figure>"
        )
    parts.append(f"<h2>Methods</h2><p>{_inline(methods)}</p></body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _inline(text: str) -> str:
    """Escape text and render Markdown **bold** (the only markup conclusions use)."""
    escaped = html.escape(text)
    pieces = escaped.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(pieces))


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
    "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;"
    "border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
    "figure{display:inline-block;margin:8px;width:48%}"
)


def shared_statement(pooled: pd.DataFrame | None, contrasts: pd.DataFrame | None, metric: str):
    """The study's answer in one paragraph: the shared threshold, or why there is none.

    Three outcomes are worded differently: a threshold below which the gain vanishes
    (plateau equivalent to zero within its margin), a kink below which the gain persists or
    may persist, and no threshold (with the pooled model that describes the gain instead).
    """
    if pooled is None or pooled.empty:
        return ""
    row = pooled.iloc[0]
    if row["verdict"] == VERDICT_INSUFFICIENT:
        return (
            "**Shared threshold: insufficient data** (no comparison has the "
            f"{MIN_CAPACITIES} capacities and two seeds per capacity a fit needs)."
        )
    unit = _UNITS.get(row["capacity"], row["capacity"])
    n = int(row["comparisons"])
    tests = (
        f"shared hinge vs each comparison's own constant p = {row['p_vs_constant']:.3g}, line "
        f"p = {row['p_vs_linear']:.3g}, power law of either curvature p = "
        f"{row['p_vs_smooth']:.3g}; joint bootstrap of runs, {int(row['n_boot'])} replicates"
    )
    if row["verdict"] != VERDICT_THRESHOLD:
        shape = {
            "smooth": "a smooth power law in capacity",
            "linear": "a straight line in log capacity",
            "constant": "a constant gain",
        }.get(row["best_model"], row["best_model"])
        if row["best_model"] == "not decided":  # a sequential look short of its boundary
            return (
                f"**Shared threshold: not shown at this look.** Pooled over {n} comparisons "
                f"({tests})." + design_statement(row)
            )
        return (
            f"**Shared threshold: none.** Pooled over {n} comparisons, the data do not prefer "
            f"one capacity threshold to a smooth curve: the gain in {metric} is described by "
            f"{shape} ({tests})." + design_statement(row)
        )
    margin = float(row["plateau_margin"])
    plateau = f"{row['plateau']:+.3g} (95% CI {row['plateau_lo']:+.3g} to {row['plateau_hi']:+.3g})"
    below = {
        "vanishes": f"below it the gain vanishes: the mean plateau {plateau} is within ±{margin:g}"
        " of zero (two one-sided tests)",
        "persists": f"but the gain persists below it: the mean plateau is {plateau}",
        "undetermined": f"whether the gain vanishes below it is undetermined: the mean plateau "
        f"{plateau} is neither shown within ±{margin:g} of zero nor different from it",
    }[row["plateau_vanishes"]]
    kind = "threshold" if row["plateau_vanishes"] == "vanishes" else "kink"
    text = (
        f"**Shared threshold: {row['threshold']:,.0f} {unit}** (95% CI "
        f"{row['threshold_lo']:,.0f} to {row['threshold_hi']:,.0f}), one {kind} for all {n} "
        f"comparisons; {below}. Above it the gain "
        f"{_DIRECTION[int(row['direction'])]} ({tests})."
    )
    return text + design_statement(row) + pooling_statement(contrasts)


def pooling_statement(contrasts: pd.DataFrame | None) -> str:
    """Whether the breakpoint differs between families and domains, one clause per factor."""
    if contrasts is None or contrasts.empty:
        return ""
    names = {"family": "families", "train_domain": "train domains", "eval_domain": "eval domains"}
    parts = [f"{names.get(f, f)}: {s}" for f, s in factor_summary(contrasts).items()]
    return " Is pooling honest? Breakpoint between " + "; ".join(parts) + "."
