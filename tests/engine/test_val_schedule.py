"""``val_eval: rungs``: val/* mAP only where ASHA decides, and the same ASHA decisions.

Real tiny trials run twice, with val/* every epoch and with val/* at the rungs and the end
only; their results go, epoch by epoch and interleaved as a launch delivers them, through the
per-cell ASHA at the rungs of ``capstudy.study.plan.asha_rungs``. The stop decisions must be
identical, and the rung epochs' metrics equal.
"""

from __future__ import annotations

import math

from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy import keys
from capstudy.engine import run_trial
from capstudy.launch.asha import STOP, CellASHA
from capstudy.study.plan import asha_rungs

GRACE, REDUCTION, EPOCHS = 1, 3, 4  # rungs at epochs 1 and 3; epoch 2 has no decision
METRIC = keys.val_metric("map50")
LRS = (2e-2, 1e-4, 5e-3, 3e-4)


def _histories(val_eval: str) -> list[list[dict]]:
    rungs = asha_rungs(GRACE, REDUCTION, EPOCHS)
    configs = [
        make_tiny_config(epochs=EPOCHS, lr=lr, rungs=rungs, val_eval=val_eval, max_train_images=16)
        for lr in LRS
    ]
    return [run_trial(config).history for config in configs]


def _decisions(histories: list[list[dict]]) -> list[tuple[int, int, str]]:
    """(trial, epoch, decision) as one cell's ASHA makes them, epoch by epoch."""
    asha = CellASHA(GRACE, REDUCTION, EPOCHS, mode="max")
    stopped: set[int] = set()
    out = []
    for epoch in range(EPOCHS):
        for trial, history in enumerate(histories):
            if trial in stopped:
                continue
            decision = asha.on_result(str(trial), "cell", epoch + 1, history[epoch][METRIC])
            out.append((trial, epoch + 1, decision))
            if decision == STOP:
                stopped.add(trial)
    return out


def test_rung_only_validation_makes_the_same_asha_decisions():
    rungs = asha_rungs(GRACE, REDUCTION, EPOCHS)
    assert rungs == [1, 3]
    every, at_rungs = _histories("every"), _histories("rungs")
    for full, sparse in zip(every, at_rungs, strict=True):
        for epoch, (a, b) in enumerate(zip(full, sparse, strict=True), start=1):
            assert a[keys.M_TRAIN_LOSS] == b[keys.M_TRAIN_LOSS]  # training is untouched
            assert math.isfinite(b[keys.M_VAL_LOSS]) and keys.M_VAL_LOSS not in a
            if epoch in rungs or epoch == EPOCHS:
                assert a[METRIC] == b[METRIC]
            else:
                assert math.isnan(b[METRIC]) and math.isfinite(a[METRIC])
    decisions = _decisions(at_rungs)
    assert decisions == _decisions(every)
    # The comparison means something: the rungs saw different values and stopped a trial
    # before its end (a trial reaching EPOCHS stops normally).
    assert len({h[0][METRIC] for h in every}) > 1
    assert any(d == STOP and epoch < EPOCHS for _, epoch, d in decisions), decisions


def test_the_loss_pass_runs_only_on_epochs_without_the_map(monkeypatch):
    """On the rung and last epochs val/loss comes from the mAP's forward: the separate
    forward-and-loss pass runs on the other epochs only (here epoch 2 of 4)."""
    from capstudy.engine import trial as trial_module

    calls = []
    real = trial_module.split_loss

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(trial_module, "split_loss", counted)
    rungs = asha_rungs(GRACE, REDUCTION, EPOCHS)
    config = make_tiny_config(epochs=EPOCHS, rungs=rungs, val_eval="rungs", max_train_images=16)
    history = run_trial(config).history
    assert len(calls) == 1
    assert all(math.isfinite(h[keys.M_VAL_LOSS]) for h in history)
