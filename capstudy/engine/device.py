"""Device, precision and threading for one trial.

On CUDA a trial trains under automatic mixed precision: bfloat16 where the GPU supports it
(no loss scaling needed, same exponent range as float32), else float16 with a GradScaler.
Losses and box decoding stay float32 (see :mod:`capstudy.engine.model`). On CPU everything is
float32: CPU autocast is slower than float32 for these small convolutions and would change
the numbers the reproducibility tests hold fixed.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass

import torch

from capstudy.errors import CapstudyError

# cuBLAS picks reduction orders by workspace; a fixed workspace config is what makes its
# matmuls repeat exactly (torch refuses deterministic mode on CUDA without it). It must be
# set before the process's first cuBLAS call, hence at import; its cost is a few MB.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


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


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """Set cuDNN/torch determinism for a trial on ``device`` (every trial sets it afresh).

    Deterministic: cuDNN's deterministic algorithms without benchmark-mode autotuning, and
    torch's deterministic kernels where one exists (``warn_only``: an op without one warns
    rather than failing a trial). Otherwise benchmark mode picks the fastest algorithm per
    input shape: trials have fixed input sizes, so the tuning pays off, but the chosen
    algorithm (and thus the last bits of every result) can vary between runs.

    A reused worker process may have run a trial of the other kind, so both settings are
    written every time. CPU kernels are deterministic already; nothing is changed there.
    """
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def claim_gpu(device: torch.device, share: float | None) -> None:
    """Start a trial on a GPU clean and within its share of the GPU's memory.

    A reused trial process still holds the previous trial's cached blocks; they are freed
    first. With a fractional share (``resources: {gpu: 0.25}``) the caching allocator is
    capped at that fraction of the GPU's memory, so one packed trial cannot starve the others
    (it fails with an out-of-memory error naming the cap instead).

    Args:
        device: The trial's device (nothing happens off CUDA).
        share: The trial's GPU fraction, or None / >= 1 for no cap.
    """
    if device.type != "cuda":
        return
    # torch.device("cuda") carries no index; the memory calls need the one it means.
    index = device.index if device.index is not None else torch.cuda.current_device()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(index)
    fraction = 1.0 if share is None or share <= 0 or share >= 1 else float(share)
    torch.cuda.set_per_process_memory_fraction(fraction, index)


def release_gpu(device: torch.device) -> None:
    """Hand a finished trial's cached GPU memory back (the next trial may be another process)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
