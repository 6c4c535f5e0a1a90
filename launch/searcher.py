"""Ray Tune searcher that walks the grid cells and samples HPO values inside each cell.

Grid dims make cells (:func:`capstudy.study.cells.expand_cells`); each cell gets
``samples_per_cell`` trials whose sampled dims come from a per-cell sampler: Ray's Optuna
integration (``OptunaSearch``, TPE, one Optuna study per cell so cells never share a
model of the objective) or seeded random draws. Suggestions go round-robin over cells, so
every cell makes progress and Optuna sees finished trials of a cell before its next
suggestion when there are more cells than parallel slots.

Every suggested config carries the study-level keys ``_cell``, ``_cell_id`` and
``_trial_key`` (a stable id ``<cell_hash>-s<k>``): MLflow runs are keyed on it, so a
resumed or retried trial continues its own run.
"""

from __future__ import annotations

import pickle
import random
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from capstudy.study import StudySpec
from capstudy.study.cells import Cell, expand_cells
from capstudy.study.plan import asha_rungs

CELL_KEY = "_cell"
CELL_ID_KEY = "_cell_id"
TRIAL_KEY = "_trial_key"
# Set on a trial rerun by `--retry-failed --retry-batch-size N` (with batch_size = N), so the
# recorder can tag its run: the run's batch_size param keeps the study's value.
RETRY_BATCH_KEY = "_retry_batch_size"
STUDY_KEYS = (CELL_KEY, CELL_ID_KEY, TRIAL_KEY, RETRY_BATCH_KEY)


def ray_space(spec: StudySpec) -> dict[str, Any]:
    """The sampled dims as Ray Tune distributions (for OptunaSearch)."""
    space: dict[str, Any] = {}
    for name, (kind, args) in spec.sampled_space().items():
        if kind == "choice":
            space[name] = tune.choice(list(args))
        elif kind == "uniform":
            space[name] = tune.uniform(*args)
        elif kind == "loguniform":
            space[name] = tune.loguniform(*args)
        else:  # randint: both ends inclusive in study files, exclusive upper bound in Ray
            space[name] = tune.randint(args[0], args[1] + 1)
    return space


def tpe_sampler(samples_per_cell: int, seed: int) -> Any:
    """Optuna's TPE sized for one cell's budget.

    TPE draws its first ``n_startup_trials`` at random (Optuna's default: 10). A cell runs only
    ``samples_per_cell`` trials (4 in ``full_grid``), so with the default TPE would never get to
    model anything; half the cell's budget goes to random start-up instead (at least 1).
    """
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=max(1, samples_per_cell // 2), seed=seed)


class CellSearcher(Searcher):
    """Suggests ``samples_per_cell`` trials for every cell of a study.

    Args:
        spec: The validated study.
        seed: Base seed of the samplers (each cell derives its own from its hash).
    """

    def __init__(self, spec: StudySpec, seed: int = 0) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        self._spec = spec
        self._cells: list[Cell] = expand_cells(spec)
        self._seed = seed
        self._issued: dict[int, int] = {}  # cell index -> samples suggested
        self._trial_cell: dict[str, int] = {}  # Ray trial id -> cell index
        self._next = 0
        self._optuna: dict[int, Any] = {}

    @property
    def total_trials(self) -> int:
        """Trials this searcher will suggest in all."""
        return len(self._cells) * self._spec.tune.samples_per_cell

    def _sample(self, index: int, trial_id: str, k: int) -> dict[str, Any]:
        if not self._spec.sampled:
            return {}
        cell = self._cells[index]
        if self._spec.tune.search == "optuna":
            if index not in self._optuna:
                from ray.tune.search.optuna import OptunaSearch

                self._optuna[index] = OptunaSearch(
                    space=ray_space(self._spec),
                    metric=self._spec.metric,
                    mode=self._spec.mode,
                    sampler=tpe_sampler(
                        self._spec.tune.samples_per_cell,
                        self._seed + int(cell.cell_hash[1:9], 16) % 10_000,
                    ),
                )
            return dict(self._optuna[index].suggest(trial_id))
        # Seeded by cell and sample index: the same study gives the same HPO values on
        # every machine and after a resume.
        rng = random.Random(f"{self._seed}:{cell.cell_hash}:{k}")
        return {d.name: d.sample(rng) for d in self._spec.sampled}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Next trial config, or ``Searcher.FINISHED`` once every cell has its samples."""
        per_cell = self._spec.tune.samples_per_cell
        n = len(self._cells)
        for step in range(n):
            index = (self._next + step) % n
            k = self._issued.get(index, 0)
            if k < per_cell:
                break
        else:
            return Searcher.FINISHED
        self._next = (index + 1) % n
        self._issued[index] = k + 1
        self._trial_cell[trial_id] = index
        cell = self._cells[index]
        config = cell.trial_dict(self._spec, self._sample(index, trial_id, k))
        # The trial checkpoints (and, with shift_eval: rungs, evaluates shifts) where ASHA
        # may stop it.
        asha = self._spec.tune.asha
        config["rungs"] = asha_rungs(asha.grace, asha.reduction, asha.max_t)
        config.update(
            {
                CELL_KEY: cell.cell_hash,
                CELL_ID_KEY: cell.cell_id,
                TRIAL_KEY: f"{cell.cell_hash}-s{k}",
            }
        )
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Tell the cell's Optuna study how the trial ended."""
        index = self._trial_cell.get(trial_id)
        if index in self._optuna:
            self._optuna[index].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        """Persist the searcher (Ray calls this so ``--resume`` continues the sequence)."""
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        """Restore what :meth:`save` wrote."""
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
