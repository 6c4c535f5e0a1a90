"""The ``sequential:`` section of a study file: looks, spending, futility, checked."""

from __future__ import annotations

import pytest

from capstudy.study import StudyError, parse_study_text
from capstudy.study.looks import spec_for_look

BASE = """
study: {name: s, task: detection, metric: val/map50}
fixed: {epochs: 2}
space:
  phi: {grid_search: [0, -1, -2, -3]}
  init: {grid_search: [random, imagenet]}
  seed: {grid_search: [10, 11, 12, 13, 14]}
"""


def _spec(tmp_path, section: str):
    return parse_study_text(BASE + section, tmp_path / "s.yaml")


def test_looks_take_the_seed_grid_in_file_order(tmp_path):
    spec = _spec(tmp_path, "sequential: {looks: [2, 5], spending: pocock, futility: null}\n")
    seq = spec.sequential
    assert seq.looks == (2, 5) and seq.spending == "pocock" and seq.futility is None
    assert seq.alpha == 0.05 and seq.simulations == 60
    seeds = [[d for d in spec_for_look(spec, k).grid if d.name == "seed"][0] for k in (1, 2)]
    assert [s.values for s in seeds] == [(10, 11), (12, 13, 14)]
    # Everything but the seeds is the study's own.
    assert spec_for_look(spec, 2).grid[:2] == spec.grid[:2]
    assert _spec(tmp_path, "").sequential is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("sequential: {looks: [5]}", "at least two seed counts"),
        ("sequential: {looks: [3, 3, 5]}", "looks must grow"),
        ("sequential: {looks: [1, 5]}", "seed count >= 2"),
        ("sequential: {looks: [2, 4]}", "last look must use every seed: space.seed lists 5"),
        ("sequential: {looks: [2, 5], spending: linear}", "must be one of obf, pocock"),
        ("sequential: {looks: [2, 5], alpha: 0.7}", "between 0.0 and 0.5"),
        ("sequential: {looks: [2, 5], futility: 0.01}", "between 0.05 and 1.0"),
        ("sequential: {looks: [2, 5], simulations: 5}", "integer >= 20"),
        ("sequential: {looks: [2, 5], gamma: 1}", "unknown key"),
    ],
)
def test_bad_sections_name_the_key_and_the_fix(tmp_path, section, message):
    with pytest.raises(StudyError, match=message) as err:
        _spec(tmp_path, section + "\n")
    assert "sequential" in str(err.value) and "s.yaml" in str(err.value)


def test_a_sequential_study_needs_a_seed_grid(tmp_path):
    text = BASE.replace("  seed: {grid_search: [10, 11, 12, 13, 14]}\n", "")
    with pytest.raises(StudyError, match="needs space.seed"):
        parse_study_text(text + "sequential: {looks: [2, 5]}\n", tmp_path / "s.yaml")
