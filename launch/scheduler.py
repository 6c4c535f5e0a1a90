"""Ray Tune scheduler adapter for per-cell ASHA (the decisions live in :mod:`.asha`)."""

from __future__ import annotations

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from capstudy.launch.asha import STOP, CellASHA
from capstudy.launch.searcher import CELL_KEY

EPOCH_ATTR = "epoch"


class CellASHAScheduler(FIFOScheduler):
    """FIFO trial order; ASHA stop decisions made per cell by :class:`CellASHA`.

    Args:
        asha: The per-cell decision maker.
        metric: The in-domain validation metric (never a shift metric).
        mode: ``max`` or ``min``.
    """

    # Ray may otherwise hand a scheduler several buffered epochs at once, so a STOP would
    # land after the trial already trained past its rung (Ray's own ASHA opts out too).
    _supports_buffered_results = False

    def __init__(self, asha: CellASHA, metric: str, mode: str) -> None:
        super().__init__()
        self.asha = asha
        self._metric = metric
        self._mode = mode

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are fixed by the study file

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if EPOCH_ATTR not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        cell = trial.config.get(CELL_KEY, "<none>")
        decision = self.asha.on_result(
            trial.trial_id, cell, int(result[EPOCH_ATTR]), result[self._metric]
        )
        return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.asha.forget(trial.trial_id)

    def debug_string(self) -> str:
        return f"CellASHA(scope={self.asha.scope}, stopped early={len(self.asha.stopped)})"
