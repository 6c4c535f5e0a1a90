"""The tracking sink: writes leave the caller at once, are retried, merged and idempotent."""

from __future__ import annotations

import threading
import time

from capstudy import keys, tracking
from capstudy.launch.sink import MetricWrite, TrackingSink


class FlakyStore:
    """Write target that refuses ``failures`` calls (a store that is down), then records."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[tuple[str, list]] = []

    def write(self, run_key: str, rows: list) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        self.batches.append((run_key, rows))


def test_writes_are_retried_until_the_store_is_back():
    store = FlakyStore(failures=3)
    sink = TrackingSink(store.write)
    sink.submit(MetricWrite("t1", {"val/map50": 0.5}, 1, 1000))
    assert sink.close(timeout=30)
    assert store.batches == [("t1", [("val/map50", 0.5, 1000, 1)])]
    assert sink.retries == 3 and sink.dropped == 0


def test_submit_returns_while_the_store_is_stuck():
    release = threading.Event()
    sink = TrackingSink(lambda key, rows: release.wait(30))
    tic = time.perf_counter()
    for step in range(200):
        sink.submit(MetricWrite("t1", {"m": 1.0}, step, step))
    assert time.perf_counter() - tic < 1.0  # the caller (a Ray callback) never waits
    assert sink.pending() > 0
    release.set()
    assert sink.close(timeout=30)


def test_consecutive_results_of_one_run_are_merged_in_order():
    store = FlakyStore()
    gate = threading.Event()
    sink = TrackingSink(lambda k, r: (gate.wait(30), store.write(k, r)))
    sink.submit(MetricWrite("first", {"m": 0.0}, 0, 0))  # holds the thread at the gate
    time.sleep(0.2)
    for step in range(1, 6):
        sink.submit(MetricWrite("a", {"m": float(step)}, step, step))
    sink.submit(MetricWrite("b", {"m": 9.0}, 1, 1))
    gate.set()
    assert sink.close(timeout=30)
    assert [k for k, _ in store.batches] == ["first", "a", "b"]
    assert [row[3] for row in store.batches[1][1]] == [1, 2, 3, 4, 5]


def test_a_refused_write_is_dropped_and_the_rest_go_through():
    done = []

    def refuse(name):
        raise ValueError(f"bad value {name}")

    sink = TrackingSink(lambda k, r: None, permanent=lambda exc: isinstance(exc, ValueError))
    sink.call("bad", refuse, "x")
    sink.call("good", done.append, "ok")
    assert sink.close(timeout=30)
    assert done == ["ok"] and sink.dropped == 1


def test_rewriting_the_same_rows_adds_nothing_to_a_real_store(capstudy_home):
    uri = tracking.configure()
    run = tracking.create_run("sink", "r", {keys.T_KIND: keys.KIND_TRIAL}, uri)
    rows = [("val/map50", 0.25, 1_700_000_000_000, 1), ("val/map50", 0.5, 1_700_000_001_000, 2)]
    tracking.log_metric_rows(run, rows, uri)
    tracking.log_metric_rows(run, rows, uri)  # a retry after a lost reply, or a replay
    history = tracking.client(uri).get_metric_history(run, "val/map50")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.25), (2, 0.5)]
