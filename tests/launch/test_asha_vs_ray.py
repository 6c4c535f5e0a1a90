"""Per-cell ASHA decides as Ray's own ``AsyncHyperBandScheduler``, result by result.

Both schedulers receive one cell's identical stream of results, as Ray's controller delivers
them: trials interleaved in random order, every trial reporting each epoch until a scheduler
stops it, values drawn from a few levels (so trials tie, as tiny models do at 0.0 mAP early
on) with NaNs mixed in. Ray's scheduler runs unmodified (one bracket, as capstudy's rungs);
capstudy's side is the Ray-facing adapter the driver installs (``CellASHAScheduler``), so the
mapping of results, cells and trial keys is checked too. The two must return the same
CONTINUE/STOP at every result.
"""

from __future__ import annotations

import math
import random

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from capstudy.launch.asha import CellASHA
from capstudy.launch.scheduler import EPOCH_ATTR, CellASHAScheduler
from capstudy.launch.searcher import CELL_KEY, TRIAL_KEY

METRIC = "val/map50"
# Few distinct levels make ties common; 0.0 is the usual tie of tiny models early on.
LEVELS = (0.0, 0.0, 0.0, 0.1, 0.2, 0.2, 0.3, 0.5, float("nan"))


class _Trial:
    """What both schedulers read of a trial: its id and its config (cell, trial key)."""

    def __init__(self, index: int) -> None:
        self.trial_id = f"t{index:03d}"
        self.config = {CELL_KEY: "cell", TRIAL_KEY: f"key-{index}"}


def _value(rng: random.Random, nan_rate: float) -> float:
    if rng.random() < nan_rate:
        return float("nan")
    return rng.choice(LEVELS[:-1]) + (rng.choice((0.0, 0.0, 0.05)) if rng.random() < 0.3 else 0)


def _run_stream(seed: int, grace: int, eta: float, max_t: int, mode: str, nan_rate: float):
    """Feed one random stream to both schedulers; return the paired decisions."""
    rng = random.Random(seed)
    ray_asha = AsyncHyperBandScheduler(
        time_attr=EPOCH_ATTR,
        metric=METRIC,
        mode=mode,
        grace_period=grace,
        reduction_factor=eta,
        max_t=max_t,
        brackets=1,
    )
    ours = CellASHAScheduler(CellASHA(grace, eta, max_t, mode=mode), METRIC, mode)
    trials = [_Trial(i) for i in range(rng.randint(4, 14))]
    for trial in trials:
        ray_asha.on_trial_add(None, trial)
    next_epoch = {t.trial_id: 1 for t in trials}
    live = list(trials)
    decisions = []
    while live:
        trial = rng.choice(live)  # arrival order: any live trial may report next
        epoch = next_epoch[trial.trial_id]
        result = {EPOCH_ATTR: epoch, METRIC: _value(rng, nan_rate)}
        theirs = ray_asha.on_trial_result(None, trial, dict(result))
        mine = ours.on_trial_result(None, trial, dict(result))
        decisions.append((trial.trial_id, epoch, result[METRIC], theirs, mine))
        if theirs != mine:
            break
        if theirs == TrialScheduler.STOP:
            # Ray's controller tells its scheduler that the trial ended (it records the
            # last result once more where a rung lacks it).
            ray_asha.on_trial_complete(None, trial, dict(result))
            ours.on_trial_complete(None, trial, dict(result))
            live.remove(trial)
        else:
            next_epoch[trial.trial_id] += 1
    return decisions


SETTINGS = [
    (grace, eta, max_t)
    for eta in (2, 3, 4)
    for grace in (1, 2, 3)
    for max_t in (9, 16, 27)
    if grace * eta < max_t
]


@pytest.mark.parametrize(("grace", "eta", "max_t"), SETTINGS)
def test_same_decision_at_every_result(grace, eta, max_t):
    stops = 0
    for seed in range(12):
        mode = "max" if seed % 2 == 0 else "min"
        nan_rate = (0.0, 0.05, 0.2)[seed % 3]
        decisions = _run_stream(seed, grace, eta, max_t, mode, nan_rate)
        trial, epoch, value, theirs, mine = decisions[-1]
        assert theirs == mine, (
            f"grace {grace}, eta {eta}, max_t {max_t}, {mode}, seed {seed}: {trial} at epoch "
            f"{epoch} with {value}: Ray says {theirs}, CellASHA says {mine}"
        )
        stops += sum(1 for _, e, _, d, _ in decisions if d == TrialScheduler.STOP and e < max_t)
    assert stops > 0  # the streams exercise early stops, not only the max_t end


def test_streams_have_ties_and_nans_at_the_rungs():
    """The comparison is only as good as its streams: ties and NaNs do reach the rungs."""
    decisions = [d for seed in range(6) for d in _run_stream(seed, 1, 3, 9, "max", 0.2)]
    at_rungs = [v for _, e, v, _, _ in decisions if e in (1, 3)]
    finite = [v for v in at_rungs if not math.isnan(v)]
    assert len(finite) - len(set(finite)) > 10
    assert sum(math.isnan(v) for v in at_rungs) > 3
