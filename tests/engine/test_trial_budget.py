"""checkpoint_every, eval_every and shift_eval: less work per trial, same final results."""

from __future__ import annotations

import pytest
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy import keys
from capstudy.config import ConfigError, TrialConfig
from capstudy.engine import run_trial

SHIFT = keys.eval_metric("synth_a/ir", "map50")


def test_due_epochs_follow_the_settings():
    config = TrialConfig(epochs=10, rungs=(2, 6), checkpoint_every=4, eval_every=3)
    assert [e for e in range(1, 11) if config.checkpoint_due(e)] == [2, 4, 6, 8, 10]
    assert [e for e in range(1, 11) if config.shift_eval_due(e)] == [3, 6, 9, 10]
    rungs = config.replace(shift_eval="rungs")
    assert [e for e in range(1, 11) if rungs.shift_eval_due(e)] == [2, 6, 10]
    final = config.replace(shift_eval="final")
    assert [e for e in range(1, 11) if final.shift_eval_due(e)] == [10]
    with pytest.raises(ConfigError, match="shift_eval='sometimes' must be one of every"):
        config.replace(shift_eval="sometimes")


def test_shift_domains_only_at_rungs_and_the_end_val_every_epoch(tmp_path):
    config = make_tiny_config(epochs=3, eval_domains=["synth_a/ir"])
    full = run_trial(config)
    lean = config.replace(shift_eval="rungs", rungs=[1], checkpoint_every=10)
    reports = []
    result = run_trial(lean, lambda m, d: reports.append((m, d)), checkpoint_dir=tmp_path)
    assert [SHIFT in m for m, _ in reports] == [True, False, True]
    assert all(keys.val_metric("map50") in m for m, _ in reports)  # ASHA's input: every epoch
    assert [d is not None for _, d in reports] == [True, False, True]  # rung 1 and the end
    # What the analysis reads, the final values, is unchanged by evaluating less often.
    assert result.metrics[SHIFT] == full.metrics[SHIFT]
