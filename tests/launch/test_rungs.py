"""One rung function for the plan and the per-cell scheduler, equal to Ray's own ASHA."""

import math

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler

from capstudy.launch.asha import CellASHA
from capstudy.study.plan import asha_rungs

GRID = [
    (grace, eta, max_t)
    for grace in (1, 2, 3, 5)
    for eta in (1.2, 1.5, 2, 2.5, 3, 4)
    for max_t in (1, 2, 3, 5, 9, 10, 27, 50, 100)
    if grace <= max_t
]


def _ray_decision_epochs(grace: int, eta: float, max_t: int) -> list[int]:
    """Whole epochs at which Ray's one-bracket ASHA decides (not just stops at max_t)."""
    sched = AsyncHyperBandScheduler(
        time_attr="training_iteration",
        metric="m",
        mode="max",
        grace_period=grace,
        reduction_factor=eta,
        max_t=max_t,
        brackets=1,
    )
    milestones = [m for m, _ in sched._brackets[0]._rungs]
    # A trial decides at the first whole iteration >= a milestone; at max_t Ray stops every
    # trial before consulting the bracket.
    return sorted({math.ceil(m - 1e-9) for m in milestones} - set(range(max_t, 10**6)))


@pytest.mark.parametrize(("grace", "eta", "max_t"), GRID)
def test_rungs_equal_rays(grace, eta, max_t):
    assert asha_rungs(grace, eta, max_t) == _ray_decision_epochs(grace, eta, max_t)


@pytest.mark.parametrize(("grace", "eta", "max_t"), [(2, 1.5, 5), (1, 3, 9), (3, 2, 20)])
def test_scheduler_decides_exactly_at_the_plan_rungs(grace, eta, max_t):
    """Drive a cell with a weak trial after a strong one: it stops at the first rung only."""
    asha = CellASHA(grace=grace, reduction=eta, max_t=max_t)
    decided = []
    for epoch in range(1, max_t):
        asha.on_result("strong", "c", epoch, 1.0)
    for epoch in range(1, max_t):
        recorded = asha._rungs("c").recorded
        before = sum(len(r) for r in recorded.values())
        asha.on_result("probe", "c", epoch, 2.0)  # never stopped: best of its cell
        if sum(len(r) for r in recorded.values()) > before:
            decided.append(epoch)
    assert decided == asha_rungs(grace, eta, max_t)
