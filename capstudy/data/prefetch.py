"""Prepare batches on a background thread while the caller trains on the current one.

One thread runs the loader's batch generator a few batches ahead and hands batches over a
bounded queue. Torch releases the GIL inside its kernels and numpy inside its gathers, so the
memmap gather, the host-to-device copy and the augmentations of batch ``i + 1`` run while the
caller's step ``i`` runs.

On CUDA the thread works on its own stream. Each batch travels with an event recorded after
its last kernel; the consumer's stream waits on that event (a device-side wait: the host never
blocks) and every tensor is marked as used by the consumer's stream, so the caching allocator
does not hand its memory back to the preparing stream while the step still reads it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

_DONE = object()
# How long a blocked put waits before checking whether the consumer went away.
_POLL_S = 0.1


def prefetch(
    make_batches: Callable[[], Iterator[Any]], depth: int, device: torch.device
) -> Iterator[Any]:
    """Yield what ``make_batches()`` yields, prepared up to ``depth`` batches ahead.

    Args:
        make_batches: Called once, on the background thread, to start the generator (so a
            CUDA generator runs under the thread's stream).
        depth: Batches prepared ahead (memory grows with it; 2 hides one step's jitter).
        device: Where the batches live; on CUDA a side stream does the preparing.

    Raises:
        Whatever the generator raised, re-raised on the consumer's thread.
    """
    cuda = device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
                for batch in make_batches():
                    event = None
                    if cuda:
                        event = torch.cuda.Event()
                        event.record(side)
                    if not put((batch, event)):
                        return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((exc, None))

    thread = threading.Thread(target=work, name="capstudy-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, event = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if event is not None:
                stream = torch.cuda.current_stream(device)
                stream.wait_event(event)
                _record_stream(item, stream)
            yield item
    finally:
        # The consumer stopped early (break, exception): let the thread leave its loop.
        stop.set()
        thread.join()


def _record_stream(item: Any, stream: torch.cuda.Stream) -> None:
    """Mark every tensor in a (nested) batch as used on ``stream``."""
    if isinstance(item, torch.Tensor):
        item.record_stream(stream)
    elif isinstance(item, dict):
        for value in item.values():
            _record_stream(value, stream)
    elif isinstance(item, list | tuple):
        for value in item:
            _record_stream(value, stream)
