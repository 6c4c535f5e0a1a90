"""Device, precision and threading for one trial.

On CUDA a trial trains under automatic mixed precision: bfloat16 where the GPU supports it
(no loss scaling needed, same exponent range as float32), else float16 with a GradScaler.
Losses and box decoding stay float32 (see :mod:`capstudy.engine.model`). On CPU everything is
float32: CPU autocast is slower than float32 for these small convolutions and would change
the numbers the reproducibility tests hold fixed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from capstudy.errors import CapstudyError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else must exist.

    Raises:
        CapstudyError: ``device`` names a CUDA device on a machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CapstudyError(
            f"device={name!r} is not a torch device ({exc}); use auto/cpu/cuda"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CapstudyError(f"device={name!r} but no CUDA GPU is visible; use device=auto")
    return device


@dataclass
class Precision:
    """How a trial computes: autocast dtype (None = float32) and a GradScaler.

    Attributes:
        device: Where the model lives.
        dtype: Autocast dtype on CUDA, or None for plain float32.
        scaler: GradScaler, enabled only for float16 (bfloat16 does not need it); a disabled
            scaler still checkpoints, so CPU and GPU checkpoints have the same keys.
        channels_last: Whether images and weights use the channels-last layout (CUDA only:
            it speeds up cuDNN convolutions under AMP and slows down CPU ones).
    """

    device: torch.device
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the forward pass (a no-op in float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def precision_for(device: torch.device, amp: bool) -> Precision:
    """Precision settings for ``device`` with AMP asked for or not."""
    dtype = None
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return Precision(device, dtype, scaler, channels_last=device.type == "cuda")


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads when ``threads > 0`` (Ray passes the trial's CPU share)."""
    if threads > 0:
        torch.set_num_threads(threads)
