"""The tidy table from CSV/Parquet files: validation, defaults and export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capstudy.analysis import tables
from capstudy.analysis.simulate import simulate_study_table
from capstudy.errors import CapstudyError


def test_missing_columns_are_named_with_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"family": ["x"], "phi": [0], "map50": [0.1]}).to_csv(path, index=False)
    with pytest.raises(CapstudyError) as err:
        tables.read_table(path)
    message = str(err.value)
    assert str(path) in message
    for col in ("init", "train_domain", "eval_domain", "seed", "selection_value"):
        assert col in message.split("(required")[0]


def test_minimal_file_gets_defaults_and_round_trips(tmp_path):
    minimal = simulate_study_table(np.random.default_rng(0), n_seeds=2)
    minimal = minimal.drop(columns=["trial_id", "label", "study", "macs"])
    path = tmp_path / "hand_made.csv"
    minimal.to_csv(path, index=False)
    table = tables.read_table(path)
    assert (table["study"] == "hand_made").all()
    assert table["cell"].str.count(r"\|").eq(4).all()
    assert table["macs"].isna().all()
    assert tables.metric_columns(table) == ["map50"]
    out = tables.write_table(table, tmp_path / "export.parquet")
    again = tables.read_table(out)
    pd.testing.assert_frame_equal(again.drop(columns="study"), table.drop(columns="study"))


def test_duplicate_trial_rows_and_bad_types_are_errors(tmp_path):
    table = simulate_study_table(np.random.default_rng(0), n_seeds=2)
    with pytest.raises(CapstudyError, match="several rows"):
        tables.normalize(pd.concat([table, table.iloc[:1]]), source="dup")
    bad = table.assign(seed=table["seed"].astype(object))
    bad.loc[0, "seed"] = "one"
    with pytest.raises(CapstudyError, match="column seed needs whole numbers"):
        tables.normalize(bad, source="bad")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(CapstudyError, match=r"\.csv or \.parquet"):
        tables.read_table(tmp_path / "x.txt")
