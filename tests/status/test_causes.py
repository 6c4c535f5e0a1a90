"""A failed trial's cause line: out of memory named as such, whatever allocator said it."""

from __future__ import annotations

import pytest

from capstudy.errors import CapstudyError
from capstudy.launch.summary import check_retry_batch_size, retry_changes
from capstudy.status.causes import cause_line, count_causes, retry_hint

TRACE = "Traceback (most recent call last):\n  File 'x.py', line 1\n{}\n\n"


@pytest.mark.parametrize(
    "last",
    [
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
        "can't allocate memory: you tried to allocate 134217728 bytes.",
        "MemoryError",
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 8.00 TiB",
        "ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.",
    ],
)
def test_out_of_memory_is_named(last):
    assert cause_line(TRACE.format(last)) == f"out of memory: {last}"[:300]


def test_other_errors_keep_their_last_line():
    assert cause_line(TRACE.format("ValueError: bad lr")) == "ValueError: bad lr"
    assert cause_line("") == ""
    # A word that merely mentions memory is not an allocation failure.
    assert cause_line("KeyError: 'memory_format'") == "KeyError: 'memory_format'"


def test_the_retry_hint_appears_only_for_out_of_memory():
    assert retry_hint("s", ["ValueError: x"]) is None
    hint = retry_hint("s", ["ValueError: x", "out of memory: MemoryError"])
    assert hint.startswith("capstudy launch --retry-failed s --retry-batch-size N")


def test_retry_batch_size_goes_with_retry_failed():
    check_retry_batch_size(True, 4)
    check_retry_batch_size(False, None)
    with pytest.raises(CapstudyError, match="only applies to --retry-failed"):
        check_retry_batch_size(False, 4)
    with pytest.raises(CapstudyError, match="--retry-batch-size 0: must be 1 or more"):
        check_retry_batch_size(True, 0)
    assert retry_changes(True, 4) == {"batch_size": 4, "_retry_batch_size": 4}
    assert retry_changes(True, None) == {} and retry_changes(False, 4) == {}


@pytest.mark.parametrize(
    "said",
    [
        # Ray 2.60 before the cluster marks the lost node dead (what the lost-node test sees).
        "The actor c625 is unavailable: The actor is temporarily unavailable: RpcError: RPC "
        "error: Socket closed rpc_code: 14. The task may or may not have been executed.",
        "The actor died because its node has died. Node Id: 5c1e",
    ],
)
def test_a_lost_process_or_node_is_named(said):
    text = f"Failure # 1 (occurred at 2026-01-01)\n{said}\n"
    assert cause_line(text) == f"process or node lost: {said}"[:300]


def test_retries_are_summed_by_cause():
    per_trial = [{"process or node lost: x": 1}, {"process or node lost: x": 2, "MemoryError": 1}]
    assert count_causes(per_trial) == [("process or node lost: x", 3), ("MemoryError", 1)]
