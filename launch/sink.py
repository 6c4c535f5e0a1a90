"""A tracking sink: MLflow writes leave the trials' hot path.

Ray 2.60's function trainables report synchronously: a trial waits in ``tune.report`` until
the driver has run every callback on its result. So the study's recorder only *enqueues*
writes here, and one thread of its own performs them against the store. While the store is
unreachable (a tracking server restarting, a network blip) the thread retries each write with
capped exponential back-off; trials keep training. :meth:`TrackingSink.close` flushes what is
left before the driver ends.

Consecutive metric writes for one run are merged into one ``log_batch`` (up to MLflow's 1000
metrics per batch): at full_grid's volume (~70 metrics per result, tens of thousands of
results) this is what keeps a SQLite or HTTP store ahead of the study.

Writes must be idempotent, because a write that reached the store but whose reply was lost is
retried: metric rows carry the result's own timestamp, and MLflow skips a metric row equal to
one it already holds (same key, value, step and timestamp); params are only logged when
missing; tags and statuses are plain overwrites.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# The queue holds small dicts of floats: 200 k entries is a few hundred MB at most and hours
# of full_grid's result rate, so only a store that stays down for hours makes ``put`` wait.
DEFAULT_MAX_QUEUE = 200_000
_MAX_BACKOFF_S = 10.0
_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


@dataclass
class MetricWrite:
    """Metrics of one result (``timestamps_ms`` keeps a retried write idempotent)."""

    run_key: str
    metrics: dict[str, float]
    step: int
    timestamp_ms: int


@dataclass
class Call:
    """Any other write: ``fn(*args)`` run on the sink thread, retried until it succeeds."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


class _Stop:
    """End-of-queue marker."""


class TrackingSink:
    """A bounded queue of tracking writes, performed by one thread with retries.

    Args:
        write_metrics: ``write_metrics(run_key, [(key, value, timestamp_ms, step), ...])``;
            performs one batch (the recorder resolves ``run_key`` to an MLflow run).
        max_queue: Queue bound; :meth:`submit` waits (and logs why) once it is full.
        retry_for_s: How long one write is retried while it keeps failing before it is given
            up (logged, counted in :attr:`dropped`). The default keeps retrying for an hour:
            a tracking server restart must not lose anything.
        permanent: Tells an error that retrying cannot fix (the store answered and refused
            the write) from a transient one; such a write is logged and dropped at once, so
            one bad value cannot hold up every write behind it.
    """

    def __init__(
        self,
        write_metrics: Callable[[str, list[tuple[str, float, int, int]]], None],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        retry_for_s: float = 3600.0,
        permanent: Callable[[Exception], bool] = lambda exc: False,
    ) -> None:
        self._write_metrics = write_metrics
        self._permanent = permanent
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._retry_for_s = retry_for_s
        self._thread: threading.Thread | None = None
        self.written = 0  # writes performed (a merged metric batch counts each result)
        self.retries = 0  # failed attempts that were retried
        self.dropped = 0  # writes given up after retry_for_s
        self.max_depth = 0  # the deepest the queue got (how far the store fell behind)

    # -- producer side (Ray callbacks in the driver) -------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="capstudy-sink", daemon=True)
            self._thread.start()

    def submit(self, item: MetricWrite | Call) -> None:
        """Queue a write; returns at once unless the queue is full."""
        self.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("tracking store is %d writes behind; waiting for it", self._queue.qsize())
            self._queue.put(item)
        self.max_depth = max(self.max_depth, self._queue.qsize())

    def call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)``."""
        self.submit(Call(name, fn, args, kwargs))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is done; False if ``timeout`` passed first."""
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the thread. Returns whether everything was written."""
        done = self.flush(timeout)
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_Stop())
            self._thread.join(timeout=5)
        self._thread = None
        return done

    def pending(self) -> int:
        """Writes queued and not yet done."""
        return self._queue.unfinished_tasks

    # -- consumer side (the sink thread) -------------------------------------------------
    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                self._queue.task_done()
                return
            batch = [item]
            if isinstance(item, MetricWrite):
                batch += self._more_metrics(item.run_key)
            try:
                self._perform(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _more_metrics(self, run_key: str) -> list[MetricWrite]:
        """Queued metric writes of the same run right behind the first one (merged)."""
        more: list[MetricWrite] = []
        count = 0
        with self._queue.mutex:
            pending = self._queue.queue
            while pending and isinstance(pending[0], MetricWrite):
                head = pending[0]
                if head.run_key != run_key or count + len(head.metrics) > _METRICS_PER_BATCH:
                    break
                more.append(pending.popleft())
                count += len(head.metrics)
            if more:
                self._queue.not_full.notify(len(more))
        return more

    def _perform(self, batch: list[MetricWrite | Call]) -> None:
        first = batch[0]
        if isinstance(first, MetricWrite):
            rows = [
                (k, float(v), w.timestamp_ms, w.step)
                for w in batch
                for k, v in w.metrics.items()  # type: ignore[union-attr]
            ]
            self._retry(f"metrics of {first.run_key}", self._write_metrics, first.run_key, rows)
        else:
            self._retry(first.name, first.fn, *first.args, **first.kwargs)
        self.written += len(batch)

    def _retry(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn`` until it succeeds, backing off while it fails (store unreachable)."""
        started = time.monotonic()
        delay = 0.2
        while True:
            try:
                fn(*args, **kwargs)
                return
            except Exception as exc:  # any store error is retried, then logged
                if self._permanent(exc) or time.monotonic() - started > self._retry_for_s:
                    self.dropped += 1
                    log.error("tracking write %s dropped: %s", name, exc)
                    return
                self.retries += 1
                log.warning("tracking write %s failed (%s); retrying in %.1f s", name, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
