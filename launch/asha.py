"""Asynchronous successive halving, scoped per cell (pure: no Ray).

ASHA (Li et al., 2020, arXiv 1810.05934) stops a trial at a rung (epochs ``grace * eta**k``)
when its metric falls below the ``1 - 1/eta`` quantile of the values recorded at that rung.
This module keeps one set of rungs *per cell*: a trial is only ever compared with trials of
its own cell (same family, phi, init, train domain and seed), which differ only in their
HPO values. A global ASHA would stop small or scratch models for being small or scratch --
exactly the comparison a capacity study exists to make (DESIGN.md, "Early stopping that is
fair across capacities"). ``scope="global"`` puts every trial in one cell; it must be asked
for, and the schema warns.

The decision rule matches Ray's ``AsyncHyperBandScheduler`` with one bracket (percentile
cutoff with ``numpy.nanpercentile``'s linear interpolation, strictly-below stops, NaNs recorded
but never stopping), so per-cell results equal what Ray would decide if each cell ran alone:
``tests/launch/test_asha_vs_ray.py`` feeds random result streams to both and requires the same
decision at every result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from capstudy.study.plan import asha_rungs

CONTINUE = "CONTINUE"
STOP = "STOP"


def _percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile ignoring NaNs (``numpy.nanpercentile``), without numpy.

    None when no value is a number (Ray's cutoff is then NaN, which stops nothing).
    """
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b, t = ordered[lo], ordered[hi], pos - lo
    # numpy's own lerp, to the last bit: from the upper value when t >= 0.5. The textbook
    # a + (b - a) * t differs in the last bit (0.1, 0.5 at the median: 0.30000000000000004
    # against numpy's 0.3), and a trial tied at the cutoff would then stop where Ray's does not.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


@dataclass
class _CellRungs:
    milestones: list[int]
    recorded: dict[int, dict[str, float]] = field(default_factory=dict)


@dataclass
class CellASHA:
    """Per-cell ASHA decisions.

    Args:
        grace: First rung (epochs every trial runs).
        reduction: eta.
        max_t: Last epoch; trials reaching it stop normally.
        mode: ``max`` or ``min`` for the metric.
        scope: ``cell`` or ``global``.
    """

    grace: int
    reduction: float
    max_t: int
    mode: str = "max"
    scope: str = "cell"
    _cells: dict[str, _CellRungs] = field(default_factory=dict)
    stopped: dict[str, tuple[str, int]] = field(default_factory=dict)

    def _rungs(self, cell: str) -> _CellRungs:
        key = cell if self.scope == "cell" else "<global>"
        if key not in self._cells:
            self._cells[key] = _CellRungs(asha_rungs(self.grace, self.reduction, self.max_t))
        return self._cells[key]

    def on_result(self, trial_id: str, cell: str, epoch: int, value: float | None) -> str:
        """Record a trial's metric at ``epoch`` and decide CONTINUE or STOP.

        Args:
            trial_id: The trial.
            cell: Its cell id (ignored with ``scope="global"``).
            epoch: Epochs completed (1-based).
            value: Metric value. None (a result without the metric) is no result: nothing is
                recorded. NaN is recorded at the rung, as Ray records it, and never stops a
                trial: the trial passes that rung undecided, and NaNs are left out of the
                cutoffs of the trials that come after it.
        """
        if epoch >= self.max_t:
            return STOP  # done: the normal end of a trial
        if trial_id in self.stopped and epoch >= self.stopped[trial_id][1]:
            # Stopped here before a driver restart that Ray's own state did not see: the
            # decision stands (re-deciding against a fuller rung could differ).
            return STOP
        if value is None:
            return CONTINUE
        signed = value if self.mode == "max" else -value
        rungs = self._rungs(cell)
        for milestone in reversed(rungs.milestones):
            if epoch < milestone:
                continue
            recorded = rungs.recorded.setdefault(milestone, {})
            if trial_id in recorded:
                return CONTINUE  # this rung already decided for the trial
            cutoff = _percentile(list(recorded.values()), (1 - 1 / self.reduction) * 100)
            recorded[trial_id] = signed
            # Strictly below, as Ray: trials tied at the cutoff (many tiny models sit at
            # 0.0 mAP early on) all continue. A NaN compares False: it never stops.
            if cutoff is not None and signed < cutoff:
                self.stopped[trial_id] = (cell, milestone)
                return STOP
            return CONTINUE
        return CONTINUE

    def to_state(self) -> dict:
        """Every rung record and stop decision, as JSON-ready data (see :meth:`from_state`)."""
        return {
            "config": [self.grace, self.reduction, self.max_t, self.mode, self.scope],
            "cells": {
                cell: {str(m): dict(rec) for m, rec in rungs.recorded.items()}
                for cell, rungs in self._cells.items()
            },
            "stopped": {t: list(v) for t, v in self.stopped.items()},
        }

    @classmethod
    def from_state(cls, state: dict) -> CellASHA:
        """Rebuild a :class:`CellASHA` saved by :meth:`to_state` (rungs restored, not reset)."""
        grace, reduction, max_t, mode, scope = state["config"]
        asha = cls(int(grace), float(reduction), int(max_t), mode, scope)
        for cell, recorded in state["cells"].items():
            rungs = _CellRungs(asha_rungs(asha.grace, asha.reduction, asha.max_t))
            rungs.recorded = {int(m): dict(rec) for m, rec in recorded.items()}
            asha._cells[cell] = rungs
        asha.stopped = {t: (c, int(m)) for t, (c, m) in state["stopped"].items()}
        return asha

    def same_settings(self, other: CellASHA) -> bool:
        """Whether ``other`` decides with the same grace, reduction, max_t, mode and scope."""
        mine = (self.grace, self.reduction, self.max_t, self.mode, self.scope)
        return mine == (other.grace, other.reduction, other.max_t, other.mode, other.scope)

    def forget(self, trial_id: str) -> None:
        """Drop a removed trial's records (so it cannot raise others' cutoffs)."""
        for rungs in self._cells.values():
            for recorded in rungs.recorded.values():
                recorded.pop(trial_id, None)
