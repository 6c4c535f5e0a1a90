"""Ray Tune scheduler adapter for per-cell ASHA (the decisions live in :mod:`.asha`).

Ray 2.60 does not save a scheduler's state, and ``Tuner.restore`` unpickles the scheduler of
the first launch as it was then. So the per-cell rungs are persisted by this adapter itself,
next to Ray's experiment folder (``<storage>/<study>.asha.json``, rewritten atomically
whenever a rung records a trial: a few times per trial, not every result; not *inside* the
folder, which Ray re-uploads from its own staging copy and would overwrite), and a pickled
scheduler unpickles as the one the current driver attached, loaded from that file
(:func:`load_asha`). A resumed -- or resumed-again -- study keeps comparing trials against
every value its rungs held. The file is read and written through :mod:`capstudy.storage`, so
``--storage s3://...`` keeps it in the bucket (one upload per save, visible whole: atomic too).
"""

from __future__ import annotations

import json
from pathlib import Path

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from capstudy.errors import CapstudyError
from capstudy.launch.asha import STOP, CellASHA
from capstudy.launch.checkpoints import repair_checkpoint
from capstudy.launch.searcher import CELL_KEY, TRIAL_KEY
from capstudy.storage import Place, place

EPOCH_ATTR = "epoch"
ASHA_STATE_SUFFIX = ".asha.json"
_ACTIVE: CellASHAScheduler | None = None


def _active_scheduler() -> CellASHAScheduler:
    """What a pickled scheduler unpickles as: the one the running driver attached."""
    if _ACTIVE is None:
        raise CapstudyError(
            "a study's scheduler was restored with no driver scheduler attached; resume "
            "studies with `capstudy launch --resume`, which attaches one"
        )
    return _ACTIVE


def asha_state_path(exp_path: Place | Path | str) -> Place:
    """Where a study's ASHA state lives: beside its Ray experiment folder (same storage)."""
    exp = exp_path if isinstance(exp_path, Place) else place(exp_path)
    return exp.with_name(exp.name + ASHA_STATE_SUFFIX)


def load_asha(exp_path: Place | Path | str, fresh: CellASHA) -> CellASHA:
    """The study's saved per-cell ASHA state, or ``fresh`` when none was saved.

    Raises:
        CapstudyError: the saved state was made with other ASHA settings (the study file's
            ``tune.asha`` changed between the launch and the resume).
    """
    path = asha_state_path(exp_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return fresh
    try:
        saved = CellASHA.from_state(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CapstudyError(
            f"{path}: unreadable ASHA state ({exc}); it is written by capstudy "
            "launch only -- restore it or start the study without --resume"
        ) from None
    if not saved.same_settings(fresh):
        raise CapstudyError(
            f"{path}: the study was launched with ASHA grace={saved.grace}, reduction="
            f"{saved.reduction}, max_t={saved.max_t}, scope={saved.scope}; the study file now "
            "says otherwise. Put tune.asha back to resume, or launch without --resume."
        )
    return saved


class CellASHAScheduler(FIFOScheduler):
    """FIFO trial order; ASHA stop decisions made per cell by :class:`CellASHA`.

    Args:
        asha: The per-cell decision maker.
        metric: The in-domain validation metric (never a shift metric).
        mode: ``max`` or ``min``.
        exp_path: The Ray experiment folder; the rungs are saved beside it
            (:func:`asha_state_path`). None: not saved.
        retry_changes: Config values every trial started by this driver gets before it
            runs (``--retry-failed --retry-batch-size``: only failed trials run again).
    """

    # Ray may otherwise hand a scheduler several buffered epochs at once, so a STOP would
    # land after the trial already trained past its rung (Ray's own ASHA opts out too).
    _supports_buffered_results = False

    def __init__(
        self,
        asha: CellASHA,
        metric: str,
        mode: str,
        exp_path: Place | Path | None = None,
        retry_changes: dict | None = None,
    ) -> None:
        super().__init__()
        self.retry_changes = dict(retry_changes or {})
        self.asha = asha
        self._metric = metric
        self._mode = mode
        self._state_file = asha_state_path(exp_path) if exp_path is not None else None
        self.saves = 0
        self.repaired = 0  # restored trials pointed at a checkpoint that exists
        self._checked: set[str] = set()  # trials whose checkpoint was checked (once each)

    def __reduce__(self) -> tuple:
        # Ray pickles the scheduler with the experiment; see the module docstring.
        return (_active_scheduler, ())

    def attach(self) -> CellASHAScheduler:
        """Make this the scheduler that pickled schedulers of this process unpickle as."""
        global _ACTIVE
        _ACTIVE = self
        return self

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are fixed by the study file

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if EPOCH_ATTR not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        cell = trial.config.get(CELL_KEY, "<none>")
        # The trial key, not Ray's trial id: it names the same trial in every launch.
        key = trial.config.get(TRIAL_KEY, trial.trial_id)
        before = self._records(cell)
        decision = self.asha.on_result(key, cell, int(result[EPOCH_ATTR]), result[self._metric])
        if self._records(cell) != before:
            self.save()
        return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE

    def on_trial_remove(self, tune_controller, trial) -> None:
        key = trial.config.get(TRIAL_KEY, trial.trial_id)
        if key not in self.asha.stopped:  # a stopped trial's rung values stay: they decided
            self.asha.forget(key)

    def choose_trial_to_run(self, tune_controller):
        # After a driver restart, a trial ASHA had stopped may come back PENDING (the stop
        # reached the saved rungs but not Ray's last experiment snapshot). If it already
        # reported its stopping rung, it ends here, as in an uninterrupted run; if Ray lost that
        # report too, it runs and is stopped again when it reports that rung.
        for trial in tune_controller.get_trials():
            if trial.status not in (Trial.PENDING, Trial.PAUSED):
                continue
            if trial.trial_id not in self._checked:
                # Restored from a snapshot that may name a checkpoint Ray already deleted.
                self._checked.add(trial.trial_id)
                if repair_checkpoint(trial) is not None:
                    self.repaired += 1
                if self.retry_changes:
                    # Before Ray builds the trial's process: it reads trial.config then.
                    trial.config.update(self.retry_changes)
                    trial.invalidate_json_state()  # the next snapshot keeps the change
            stop = self.asha.stopped.get(trial.config.get(TRIAL_KEY, trial.trial_id))
            reached = int((trial.last_result or {}).get(EPOCH_ATTR, 0) or 0)
            if stop is not None and reached >= stop[1]:
                tune_controller.stop_trial(trial)
        return super().choose_trial_to_run(tune_controller)

    def _records(self, cell: str) -> int:
        """Values recorded in ``cell``'s rungs (changes only when a rung records a trial)."""
        return sum(len(r) for r in self.asha._rungs(cell).recorded.values())

    def save(self) -> None:
        """Write the rungs atomically (a killed driver leaves the old or the new file)."""
        if self._state_file is None:
            return
        self._state_file.write_text(json.dumps(self.asha.to_state()))
        self.saves += 1

    def debug_string(self) -> str:
        return f"CellASHA(scope={self.asha.scope}, stopped early={len(self.asha.stopped)})"
