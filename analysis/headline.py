"""A report that leads with the answer, plus the outputs researchers reach for next.

:func:`finish` runs after the analysis has written its folder: it adds the paper's figures
and tables (``paper/``), the Pareto figures, the cost of the study, and puts a headline at the
top of ``report.md`` and ``report.html``: Figure 1 and one line per comparison (threshold with
its CI or "no threshold", direction, adjusted p). The full wording and diagnostics stay below.

Columns of the threshold table are read defensively: ``direction`` and an adjusted p-value
(``p_threshold_adj``) are used when the analysis provides them; otherwise the direction comes
from the verdict and the slope, and the larger of the two test p-values is shown, marked
unadjusted.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capstudy.analysis import pareto
from capstudy.analysis.figures import human
from capstudy.analysis.paper import write_paper
from capstudy.analysis.report import shared_statement

VERDICT_COLUMNS = ["comparison", "threshold (95% CI)", "direction", "p (adjusted)"]
HEADLINE_MARK = "<!-- capstudy:headline -->"


@dataclass
class Extras:
    """What the analysis reads besides the tidy table (from MLflow; empty for files)."""

    costs: pd.DataFrame | None = None  # one row per trial run: init, status, device_seconds
    latency: dict[str, float] = field(default_factory=dict)  # label -> CPU ms per image
    # A sequential study's boundaries and recorded look decisions (the parent run's tags):
    # the shared verdict follows the design (capstudy.analysis.sequential.apply_design).
    sequential: dict | None = None


def _direction(row: pd.Series) -> int:
    if "direction" in row and pd.notna(row["direction"]):
        return int(row["direction"])
    if row.get("verdict") != "threshold":
        return 0
    slope = row.get("slope", 0.0)
    return 0 if pd.isna(slope) or slope == 0 else (1 if slope > 0 else -1)


def _p_value(row: pd.Series) -> str:
    for col in ("p_threshold_adj", "p_adjusted", "p_adj"):
        if col in row and pd.notna(row[col]):
            return f"{float(row[col]):.3g}"
    ps = [row.get(c) for c in ("p_vs_linear", "p_vs_constant") if pd.notna(row.get(c))]
    return f"{max(map(float, ps)):.3g} (unadjusted)" if ps else "-"


def headline_table(fits: pd.DataFrame | None) -> pd.DataFrame:
    """One line per comparison: family, init vs random, train -> eval; the answer."""
    rows = []
    for _, r in (fits if fits is not None else pd.DataFrame()).iterrows():
        if r.get("verdict") == "threshold":
            answer = (
                f"{human(r['threshold'])} ({human(r['threshold_lo'])}–{human(r['threshold_hi'])})"
            )
        elif r.get("verdict") == "insufficient data":
            answer = "insufficient data"
        else:
            answer = "no threshold"
        d = _direction(r)
        rows.append(
            {
                "comparison": f"{r['family']}: {r['init']} vs random, {r['train_domain']} → "
                f"{r['eval_domain']}",
                "threshold (95% CI)": answer,
                # Which way the gain goes above the threshold; none without a threshold.
                "direction": {1: "gain grows with capacity", -1: "gain shrinks with capacity"}.get(
                    d, "–"
                ),
                "p (adjusted)": _p_value(r),
            }
        )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def cost_table(costs: pd.DataFrame | None) -> pd.DataFrame:
    """Device-hours per init and in total (every trial run, failed ones included)."""
    if costs is None or costs.empty or "device_seconds" not in costs:
        return pd.DataFrame()
    per = costs.groupby("init")["device_seconds"].agg(["sum", "count"]).reset_index()
    per.columns = ["init", "device_seconds", "trials"]
    total = pd.DataFrame(
        [
            {
                "init": "total",
                "device_seconds": per["device_seconds"].sum(),
                "trials": per["trials"].sum(),
            }
        ]
    )
    out = pd.concat([per, total], ignore_index=True)
    out["device_hours"] = out["device_seconds"] / 3600
    return out


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return ""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def finish(result, extras: Extras | None = None, mode: str = "max") -> list[Path]:
    """Write the extra outputs into ``result.out_dir`` and lead both reports with the answer.

    Args:
        result: The :class:`~capstudy.analysis.pipeline.AnalysisResult` just written.
        extras: Costs and latencies read from MLflow (None for a results file).
        mode: Direction of the metric (for the Pareto front).

    Returns:
        The files written (also appended to ``result.files``).
    """
    extras = extras or Extras()
    out = Path(result.out_dir)
    files = write_paper(
        result.selected, result.summary, result.fits, result.capacity, result.metric, out / "paper"
    )
    files += pareto.pareto_figures(
        result.selected, result.capacity, result.metric, out / "pareto", mode, extras.latency
    )
    verdicts, costs = headline_table(result.fits), cost_table(extras.costs)
    tables = {"verdicts.csv": verdicts, "cost.csv": costs}
    for name, df in tables.items():
        if not df.empty:
            df.to_csv(out / "tables" / name, index=False)
            files.append(out / "tables" / name)
    figure = out / "paper" / "figure1.png"
    answer = shared_statement(
        getattr(result, "pooled", None), getattr(result, "contrasts", None), result.metric
    )
    fig = figure if figure.exists() else None
    _lead_markdown(out / "report.md", verdicts, costs, fig, answer)
    _lead_html(out / "report.html", verdicts, costs, fig, answer)
    result.files.extend(files)
    return files


def _lead_markdown(path: Path, verdicts, costs, figure: Path | None, answer: str = "") -> None:
    text = path.read_text(encoding="utf-8")
    if HEADLINE_MARK in text:
        return
    title, _, rest = text.partition("\n")
    parts = [title, "", HEADLINE_MARK, "## Headline", ""]
    parts += [answer, ""] if answer else []
    if figure is not None:
        parts += [f"![Figure 1: gain vs capacity]({figure.relative_to(path.parent).as_posix()})"]
        parts += [""]
    parts += [_md_table(verdicts) or "No comparisons (threshold fitting not requested).", ""]
    if not costs.empty:
        parts += ["### Cost", "", _md_table(costs), ""]
    path.write_text("\n".join(parts) + rest, encoding="utf-8")


def _lead_html(path: Path, verdicts, costs, figure: Path | None, answer: str = "") -> None:
    text = path.read_text(encoding="utf-8")
    if HEADLINE_MARK in text:
        return
    parts = [HEADLINE_MARK, "<section id='headline'><h2>Headline</h2>"]
    if answer:
        bold = html.escape(answer).replace("**", "")
        parts.append(f"<p id='shared-threshold'>{bold}</p>")
    if figure is not None:
        data = base64.b64encode(figure.read_bytes()).decode("ascii")
        parts.append(
            "<figure id='headline-figure'><img alt='Figure 1: gain vs capacity' "
            f"src='data:image/png;base64,{data}'><figcaption>Figure 1: gain over random init "
            "against capacity; dashed lines and bands: thresholds and their 95% CIs"
            "</figcaption></figure>"
        )
    if verdicts.empty:
        parts.append("<p>No comparisons (threshold fitting not requested).</p>")
    else:
        parts.append(verdicts.to_html(index=False, escape=True, border=0, table_id="verdicts"))
    if not costs.empty:
        parts.append("<h3>Cost</h3>" + costs.map(_fmt).to_html(index=False, border=0))
    parts.append("</section>")
    head, sep, rest = text.partition("</h1>")
    if not sep:
        head, rest = "", text
    path.write_text(head + sep + "".join(parts) + rest, encoding="utf-8")


def verdict_lines(verdicts: pd.DataFrame) -> list[str]:
    """The verdict table as terminal lines; the p-value says whether it is adjusted
    (Benjamini-Hochberg across the study's threshold tests, which lifts the smaller p-values
    toward the larger ones)."""
    lines = []
    for _, r in verdicts.iterrows():
        p = str(r["p (adjusted)"])
        p = p if p.endswith("(unadjusted)") or p == "-" else f"{p} (BH-adjusted)"
        direction = "" if r["direction"] == "–" else f"; {r['direction']}"
        lines.append(f"{r['comparison']}: {r['threshold (95% CI)']}{direction}; p {p}")
    return lines
