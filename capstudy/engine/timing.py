"""Time the phases of repeated device work without making the host wait between them.

On a GPU each phase boundary records a CUDA event into the stream and the host moves on;
the events are read once, after one synchronisation at the end. On a CPU every operation
has finished when it returns, so the wall clock at each boundary is already exact. Either
way the timed code runs as it does untimed: a breakdown does not change what it measures.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch


class PhaseTimer:
    """Seconds per named phase, summed over repetitions.

    Call :meth:`start` where a repetition begins and :meth:`mark` at the end of each phase
    (a phase runs from the previous mark or start). :meth:`add` records work timed on the
    host (COCO scoring after the transfer).

    Args:
        device: Where the timed work runs (CUDA events on ``cuda``, wall clock otherwise).
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._last: object = None
        self._events: list[tuple[str, object, object]] = []
        self._host: dict[str, float] = defaultdict(float)

    def _now(self) -> object:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        """Begin a repetition (the first phase starts here)."""
        self._last = self._now()

    def mark(self, phase: str) -> None:
        """End ``phase`` here; the next phase starts here."""
        now = self._now()
        self._events.append((phase, self._last, now))
        self._last = now

    def add(self, phase: str, seconds: float) -> None:
        """Add host-timed seconds to ``phase``."""
        self._host[phase] += seconds

    def totals(self) -> dict[str, float]:
        """Seconds per phase, in the order phases first appeared (one sync on a GPU)."""
        if self.cuda and self._events:
            torch.cuda.synchronize()
        out: dict[str, float] = {}
        for phase, begin, end in self._events:
            # CUDA events give milliseconds of device time; the host clock gives seconds.
            seconds = begin.elapsed_time(end) / 1000 if self.cuda else end - begin  # type: ignore
            out[phase] = out.get(phase, 0.0) + seconds
        for phase, seconds in self._host.items():
            out[phase] = out.get(phase, 0.0) + seconds
        return out


class NoTimer(PhaseTimer):
    """A timer that records nothing (the untimed default)."""

    def __init__(self) -> None:
        super().__init__(torch.device("cpu"))

    def start(self) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass

    def add(self, phase: str, seconds: float) -> None:
        pass
