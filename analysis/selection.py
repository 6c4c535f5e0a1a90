"""Selection: per grid cell, the trial with the best in-domain validation metric.

A cell is one value of every grid dim (family, phi, init, train domain, seed, and any other:
free-scale width/depth, input size, ...); its trials differ only in HPO values.
The winner is chosen on ``selection_value`` alone: the trial's final value of the study's
validation metric (``val/<name>``) on the train domain's validation split. Evaluation-domain
(shift) metrics never take part in the choice; they are only reported for the winner.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from capstudy import keys
from capstudy.errors import CapstudyError


@dataclass
class Selection:
    """The winners' rows (every evaluation domain) and counts for the report."""

    table: pd.DataFrame
    n_cells: int
    n_trials: int
    n_without_value: int


def infer_mode(selection_metric: str) -> str:
    """``min`` for loss/error-like metric names, ``max`` for everything else (mAP, accuracy)."""
    name = selection_metric.rsplit("/", 1)[-1].lower()
    return "min" if any(w in name for w in ("loss", "error", "err")) else "max"


def resolve_mode(table: pd.DataFrame, mode: str | None = None) -> str:
    """The direction of the study metric: the one rule every part of the analysis uses.

    In order: ``mode`` when given; else the study's recorded ``mode`` (the tidy table's
    ``selection_mode`` column, from the study file via the trial runs); else a guess from the
    metric's name (:func:`infer_mode`); else ``max``.

    Raises:
        CapstudyError: ``mode`` or a recorded mode is not max/min, or trials record two modes.
    """
    source = "selection mode"
    if mode is None and "selection_mode" in table.columns:
        recorded = sorted({str(m) for m in table["selection_mode"].dropna().unique() if str(m)})
        if len(recorded) > 1:
            raise CapstudyError(
                f"column selection_mode: trials record different modes {recorded}; "
                "analyse one study at a time or pass --mode"
            )
        mode, source = (recorded[0], "column selection_mode") if recorded else (None, source)
    if mode is None:
        metrics = [str(m) for m in table["selection_metric"].unique() if str(m)]
        mode = infer_mode(metrics[0]) if metrics else "max"
    if mode not in ("max", "min"):
        raise CapstudyError(f"{source} must be max or min, not {mode!r}")
    return mode


def check_in_domain(table: pd.DataFrame) -> None:
    """Refuse a selection metric that is not an in-domain validation metric.

    Raises:
        CapstudyError: some trial's ``selection_metric`` is set and is not ``val/...``.
    """
    names = {str(n) for n in table["selection_metric"].unique() if str(n)}
    bad = sorted(n for n in names if not n.startswith(keys.M_VAL_PREFIX))
    if bad:
        raise CapstudyError(
            f"selection metric {bad[0]!r} is not an in-domain validation metric "
            f"({keys.M_VAL_PREFIX}<name>); selecting by a shift metric would bias the study"
        )


def select_best(table: pd.DataFrame, mode: str | None = None) -> Selection:
    """Keep, per cell, the trial with the best ``selection_value`` (all its domain rows).

    Args:
        table: the tidy table.
        mode: ``max`` or ``min``; when None, :func:`resolve_mode` decides.

    Returns:
        The selection. Ties go to the smallest ``trial_id`` so reruns pick the same trial.
        Trials without a selection value (NaN) cannot win and are counted.
    """
    check_in_domain(table)
    mode = resolve_mode(table, mode)
    trials = table.drop_duplicates("trial_id")[["cell", "trial_id", "selection_value"]]
    n_without = int(trials["selection_value"].isna().sum())
    valid = trials.dropna(subset=["selection_value"])
    ordered = valid.sort_values(
        ["cell", "selection_value", "trial_id"], ascending=[True, mode == "min", True]
    )
    winners = ordered.drop_duplicates("cell", keep="first")["trial_id"]
    chosen = table[table["trial_id"].isin(set(winners))].reset_index(drop=True)
    return Selection(
        table=chosen,
        n_cells=int(table["cell"].nunique()),
        n_trials=len(trials),
        n_without_value=n_without,
    )
