"""The per-step learning-rate schedule."""

from __future__ import annotations

import pytest

from capstudy.engine.optim import lr_factor


def test_lr_warms_up_then_decays_to_zero():
    factors = [lr_factor(s, total=10, warmup=2, schedule="cosine") for s in range(11)]
    assert factors[0] < factors[1] < factors[2] == 1.0
    assert factors[10] == pytest.approx(0.0)
    assert lr_factor(9, total=10, warmup=2, schedule="constant") == 1.0
