"""Precision, determinism and GPU-share settings (their CPU behaviour; GPU: test_gpu.py)."""

from __future__ import annotations

import torch

from capstudy.engine.device import claim_gpu, configure_backends, precision_for


def test_cpu_falls_back_to_float32_without_scaler_or_channels_last():
    precision = precision_for(torch.device("cpu"), amp=True)
    assert precision.dtype is None
    assert not precision.scaler.is_enabled()
    assert not precision.channels_last


def test_cpu_leaves_global_backend_settings_alone():
    before = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )
    for deterministic in (True, False):
        configure_backends(torch.device("cpu"), deterministic)
        claim_gpu(torch.device("cpu"), 0.25)
    after = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )
    assert after == before
