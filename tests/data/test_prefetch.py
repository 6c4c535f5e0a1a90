"""The prefetching loader: same batches as without it, clean early stops, errors surface."""

from __future__ import annotations

import threading

import pytest
import torch
from data_fixtures import write_llvip

from capstudy.data import BatchLoader, get_split
from capstudy.data.prefetch import prefetch


def _split(tmp_path, n=10):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip", n_train=n))}
    return get_split("llvip/ir", "train", (40, 32), roots=roots)


def test_prefetch_yields_exactly_the_unprefetched_batches(tmp_path):
    split = _split(tmp_path)

    def epochs(depth):
        loader = BatchLoader(split, 3, shuffle=True, seed=5, augment=True, prefetch=depth)
        return [list(loader) for _ in range(2)]

    plain, ahead = epochs(0), epochs(2)
    for epoch_plain, epoch_ahead in zip(plain, ahead, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_plain, epoch_ahead, strict=True):
            assert torch.equal(xa, xb)
            for ta, tb in zip(ya, yb, strict=True):
                assert torch.equal(ta["boxes"], tb["boxes"])
                assert torch.equal(ta["labels"], tb["labels"])


def _prefetch_threads() -> int:
    return sum(t.name == "capstudy-prefetch" for t in threading.enumerate())


def test_breaking_out_early_stops_the_thread(tmp_path):
    loader = BatchLoader(_split(tmp_path), 2, shuffle=False, seed=0, prefetch=1)
    before = _prefetch_threads()
    batches = iter(loader)
    next(batches)
    assert _prefetch_threads() == before + 1
    batches.close()  # what a `break` out of a for loop does
    assert _prefetch_threads() == before


def test_an_error_while_preparing_reaches_the_consumer():
    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(broken, 2, torch.device("cpu")):
            got.append(item)
    assert got == [1]


def test_negative_prefetch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="prefetch"):
        BatchLoader(_split(tmp_path, n=2), 2, shuffle=False, seed=0, prefetch=-1)
