"""``capstudy.analysis.analyze_study``: the whole analysis in one library call.

It must write what ``capstudy analyze`` writes (headline, paper outputs, Pareto, cost), and
take the metric's direction from the study's recorded mode first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli

from capstudy.analysis import analyze_study, selection
from capstudy.analysis.simulate import simulate_study_table
from capstudy.errors import CapstudyError


@pytest.fixture(scope="module")
def study_table() -> pd.DataFrame:
    # A clear threshold (0.15 per tenfold above 100 k parameters, 3 seeds), as in the CLI test.
    return simulate_study_table(np.random.default_rng(3), slope=0.15)


def _files(folder) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_library_call_writes_headline_paper_and_verdicts(tmp_path, study_table):
    out = tmp_path / "lib"
    result = analyze_study(
        table=study_table, out=out, find_threshold=True, n_boot=200, log_mlflow=False
    )
    md = (out / "report.md").read_text()
    assert md.index("## Headline") < md.index("## Conclusions")
    assert "](paper/figure1.png)" in md.split("## Conclusions")[0]
    assert (out / "paper" / "figure1.pdf").stat().st_size > 0
    verdicts = pd.read_csv(out / "tables" / "verdicts.csv")
    assert list(verdicts.columns) == list(result.verdicts.columns)
    assert len(verdicts) == len(result.fits) == 2  # one per evaluation domain
    assert verdicts["threshold (95% CI)"].str.contains("k").any()  # the 100 k threshold
    assert any(f.startswith("pareto/pareto_") for f in _files(out))
    assert result.run_id is None and result.mode == "max"


def test_library_and_command_write_the_same_files(tmp_path, study_table):
    path = tmp_path / "table.csv"
    study_table.to_csv(path, index=False)
    args = ["--from", str(path), "--find-threshold", "--no-mlflow", "--bootstrap", "100"]
    assert run_cli(["analyze", *args, "--out", str(tmp_path / "cli")]) == 0
    lib = tmp_path / "lib"
    analyze_study(from_file=path, out=lib, find_threshold=True, n_boot=100, log_mlflow=False)
    assert _files(lib) == _files(tmp_path / "cli")
    for name in ("verdicts.csv", "thresholds.csv", "gains.csv"):
        a, b = (pd.read_csv(d / "tables" / name) for d in (lib, tmp_path / "cli"))
        pd.testing.assert_frame_equal(a, b)


def _two_trials_per_cell(table: pd.DataFrame, recorded_mode: str) -> pd.DataFrame:
    """Each trial twice: the copy ``b`` has the higher validation value."""
    copy = table.copy()
    copy["trial_id"] = copy["trial_id"] + "_b"
    copy["selection_value"] += 0.1
    both = pd.concat([table, copy], ignore_index=True)
    both["selection_mode"] = recorded_mode
    return both


def test_the_recorded_mode_decides_unless_a_mode_is_given(tmp_path, study_table):
    table = _two_trials_per_cell(study_table, "min")
    result = analyze_study(table=table, out=tmp_path / "a", log_mlflow=False, n_boot=100)
    assert result.mode == "min"
    assert not result.selected["trial_id"].str.endswith("_b").any()  # lower value wins
    result = analyze_study(
        table=table, out=tmp_path / "b", log_mlflow=False, n_boot=100, mode="max"
    )
    assert result.selected["trial_id"].str.endswith("_b").all()


def test_mode_rule_order_and_bad_modes(study_table):
    table = study_table.assign(selection_mode="", selection_metric="val/loss")
    assert selection.resolve_mode(table) == "min"  # nothing recorded: from the name
    assert selection.resolve_mode(table.assign(selection_mode="max")) == "max"  # recorded
    assert selection.resolve_mode(table.assign(selection_mode="max"), "min") == "min"  # given
    mixed = table.assign(selection_mode=["max", "min"] * (len(table) // 2))
    with pytest.raises(CapstudyError, match="selection_mode"):
        selection.resolve_mode(mixed)
    with pytest.raises(CapstudyError, match="'best'"):
        selection.resolve_mode(table.assign(selection_mode="best"))


def test_options_given_twice_are_refused(study_table, tmp_path):
    from capstudy.analysis.pipeline import AnalysisOptions

    with pytest.raises(CapstudyError, match="not both"):
        analyze_study(table=study_table, options=AnalysisOptions(), find_threshold=True)
    with pytest.raises(CapstudyError, match="at least 100"):
        analyze_study(table=study_table, out=tmp_path, n_boot=10, log_mlflow=False)
