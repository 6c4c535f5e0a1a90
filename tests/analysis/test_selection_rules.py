"""Selection: best in-domain validation per cell, never a shift metric."""

from __future__ import annotations

import pandas as pd
import pytest

from capstudy.analysis import selection, tables
from capstudy.errors import CapstudyError


def _trial(trial_id: str, val: float, shift: float, in_domain: float, metric="val/map50"):
    base = {
        "family": "mobilenetv3_small",
        "phi": -3,
        "init": "imagenet",
        "train_domain": "a/rgb",
        "seed": 0,
        "trial_id": trial_id,
        "selection_value": val,
        "selection_metric": metric,
    }
    return [
        {**base, "eval_domain": "a/rgb", "map50": in_domain},
        {**base, "eval_domain": "a/ir", "map50": shift},
    ]


def test_best_validation_wins_even_when_a_shift_metric_disagrees():
    rows = _trial("good_val", 0.6, shift=0.1, in_domain=0.6)
    rows += _trial("good_shift", 0.5, shift=0.9, in_domain=0.5)
    table = tables.normalize(pd.DataFrame(rows), source="t")
    chosen = selection.select_best(table).table
    assert set(chosen["trial_id"]) == {"good_val"}
    assert len(chosen) == 2  # its metrics on every evaluation domain
    assert list(chosen.columns) == list(table.columns) and list(chosen.index) == [0, 1]
    assert chosen.set_index("eval_domain").loc["a/ir", "map50"] == pytest.approx(0.1)


def test_min_mode_ties_and_missing_values():
    rows = _trial("b", 0.2, 0, 0, "val/loss") + _trial("a", 0.2, 0, 0, "val/loss")
    rows += _trial("c", 0.5, 0, 0, "val/loss") + _trial("nan", float("nan"), 0, 0, "val/loss")
    table = tables.normalize(pd.DataFrame(rows), source="t")
    result = selection.select_best(table)  # loss -> min, inferred
    assert set(result.table["trial_id"]) == {"a"}  # tie -> smallest trial id
    assert result.n_without_value == 1 and result.n_cells == 1 and result.n_trials == 4
    assert set(selection.select_best(table, "max").table["trial_id"]) == {"c"}


def test_a_shift_selection_metric_is_refused():
    table = tables.normalize(pd.DataFrame(_trial("x", 0.5, 0, 0, "eval/a/ir/map50")), "t")
    with pytest.raises(CapstudyError, match="not an in-domain validation metric"):
        selection.select_best(table)


@pytest.mark.parametrize(
    ("metric", "mode"),
    [
        ("val/loss", "min"),
        ("val/box_loss", "min"),
        ("val/top1_err", "min"),  # "err" alone, not only "error"
        ("val/error_rate", "min"),
        ("val/map50", "max"),
        ("val/accuracy", "max"),
        ("loss", "min"),  # a bare name is its own last part
    ],
)
def test_mode_is_inferred_from_the_metric_name(metric, mode):
    assert selection.infer_mode(metric) == mode


def test_trials_without_a_selection_metric_are_counted_not_refused():
    # A trial that failed before its first report has no metric name and no value: it cannot
    # win, and it is not a shift metric either (refusing the study would hide its good cells).
    rows = _trial("ok", 0.4, 0, 0) + _trial("failed", float("nan"), 0, 0, metric="")
    table = tables.normalize(pd.DataFrame(rows), source="t")
    result = selection.select_best(table)
    assert set(result.table["trial_id"]) == {"ok"} and result.n_without_value == 1
    # No trial named a metric at all: the mode defaults to max.
    none = tables.normalize(
        pd.DataFrame(_trial("a", 0.1, 0, 0, "") + _trial("b", 0.3, 0, 0, "")), "t"
    )
    assert set(selection.select_best(none).table["trial_id"]) == {"b"}


def test_an_unknown_mode_is_refused_by_name():
    table = tables.normalize(pd.DataFrame(_trial("x", 0.5, 0, 0)), source="t")
    with pytest.raises(CapstudyError, match="selection mode must be max or min, not 'best'"):
        selection.select_best(table, "best")
