"""The cell searcher: every cell gets its samples, keys are stable, configs are valid."""

from collections import Counter

import pytest
from ray.tune.search import Searcher

from capstudy.launch.searcher import CELL_ID_KEY, CELL_KEY, TRIAL_KEY, CellSearcher, ray_space
from capstudy.launch.trainable import trial_config
from capstudy.study import load_study, parse_study_text
from capstudy.study.cells import expand_cells

STUDY = """
study: {name: s, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 3, image_size: 64}
space:
  family: {grid_search: [efficientnet_b0, mobilenetv3_small]}
  phi: {grid_search: [-5, -6]}
  init: {grid_search: [random, imagenet]}
  seed: {grid_search: [0, 1]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
  head_width: {choice: [8, 16]}
evaluate: [synth_a/ir]
tune: {samples_per_cell: 3, search: SEARCH, asha: {grace: 1, reduction: 3}}
"""


def _spec(search="random"):
    return parse_study_text(STUDY.replace("SEARCH", search), "inline.yaml")


def _drain(searcher):
    configs = []
    for i in range(1000):
        c = searcher.suggest(f"t{i}")
        if c is Searcher.FINISHED:
            return configs
        configs.append(c)
    raise AssertionError("searcher never finished")


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_every_cell_gets_its_samples(search):
    spec = _spec(search)
    searcher = CellSearcher(spec)
    configs = _drain(searcher)
    cells = expand_cells(spec)
    assert len(configs) == searcher.total_trials == len(cells) * 3 == 48
    assert Counter(c[CELL_KEY] for c in configs) == {cell.cell_hash: 3 for cell in cells}
    assert len({c[TRIAL_KEY] for c in configs}) == 48
    for c in configs:
        config = trial_config(c)  # study keys stripped; the rest is a valid trial config
        assert 1e-4 <= config.lr <= 1e-2 and config.head_width in (8, 16)
        assert config.hpo_keys == ("lr", "head_width")
        assert c[CELL_ID_KEY].startswith(config.family)


def test_random_search_is_reproducible_and_differs_within_a_cell():
    a, b = _drain(CellSearcher(_spec())), _drain(CellSearcher(_spec()))
    assert [c["lr"] for c in a] == [c["lr"] for c in b]
    by_cell = {}
    for c in a:
        by_cell.setdefault(c[CELL_KEY], []).append(c["lr"])
    assert all(len(set(v)) == 3 for v in by_cell.values())


def test_save_restore_continues_the_sequence(tmp_path):
    first = CellSearcher(_spec())
    head = [first.suggest(f"t{i}") for i in range(10)]
    first.save(str(tmp_path / "s.pkl"))
    second = CellSearcher(_spec())
    second.restore(str(tmp_path / "s.pkl"))
    rest = _drain(second)
    keys = [c[TRIAL_KEY] for c in head + rest]
    assert len(keys) == len(set(keys)) == 48


def test_ray_space_covers_sampled_dims():
    space = ray_space(_spec())
    assert set(space) == {"lr", "head_width"}


def test_every_shipped_study_expands_into_valid_trials():
    for name in ("smoke", "full_grid", "domainnet", "free_scale"):
        spec = load_study(name)
        searcher = CellSearcher(spec)
        first = searcher.suggest("t0")
        trial_config(first)
        assert searcher.total_trials == len(expand_cells(spec)) * spec.tune.samples_per_cell


def test_optuna_cells_start_modelling_within_their_budget():
    from capstudy.launch.searcher import tpe_sampler

    assert tpe_sampler(4, 0)._n_startup_trials == 2
    assert tpe_sampler(1, 0)._n_startup_trials == 1
