"""Parallel cache builds: same bytes as the serial build, every failure named, bounded work."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import truncate, voc
from PIL import Image

from capstudy.data import cache
from capstudy.data.cache import _decoded, build_entry, decode_workers
from capstudy.data.domains import DATASETS
from capstudy.data.index import finalize
from capstudy.data.labels import default_label_map
from capstudy.data.readers import read_raw
from capstudy.errors import CapstudyError


def _write_llvip(root, n: int = 24):
    """LLVIP-layout pairs with distinct noise images of varied sizes and distinct boxes,
    so a row written in the wrong place or a box scaled by another image's size shows."""
    rng = np.random.default_rng(0)
    for i in range(n):
        stem = f"{10001 + i:06d}"
        w, h = 40 + 8 * (i % 5), 32 + 4 * (i % 3)
        for folder in ("visible", "infrared"):
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            path = root / folder / "train" / f"{stem}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, quality=90)
        voc(root / "Annotations" / f"{stem}.xml", [("person", 1 + i % 7, 2, 20, 25)], (w, h))
    return root


def _index(root):
    raw = read_raw(DATASETS["llvip"].format, root, "train", "rgb")
    return finalize(raw, default_label_map("llvip"))


def test_threads_build_the_serial_bytes(tmp_path):
    index = _index(_write_llvip(tmp_path / "llvip"))
    one, four = tmp_path / "w1" / "entry", tmp_path / "w4" / "entry"
    one.parent.mkdir()
    four.parent.mkdir()
    build_entry(one, index, (48, 40), "fp", workers=1)
    build_entry(four, index, (48, 40), "fp", workers=4)
    for name in ("images.npy", "boxes.npy", "labels.npy", "offsets.npy", "ids.txt"):
        assert (one / name).read_bytes() == (four / name).read_bytes(), name
    images = np.load(one / "images.npy")
    assert len({images[i].tobytes() for i in range(len(images))}) == len(images)  # distinct


def test_every_failing_file_is_named_in_order(tmp_path):
    root = _write_llvip(tmp_path / "llvip")
    bad = [root / "visible" / "train" / f"{10001 + i:06d}.jpg" for i in (3, 11, 19)]
    for path in bad:
        truncate(path)
    index = _index(root)
    for workers in (1, 4):
        folder = tmp_path / f"w{workers}" / "entry"
        folder.parent.mkdir()
        with pytest.raises(CapstudyError) as err:
            build_entry(folder, index, (48, 40), "fp", workers=workers)
        text = str(err.value)
        assert text.startswith("3 image(s) could not be decoded")
        positions = [text.index(str(p)) for p in bad]
        assert positions == sorted(positions)  # file order, as the serial build reports
        assert not folder.exists()  # nothing half-written is left as an entry


def test_in_flight_work_is_bounded(tmp_path, monkeypatch):
    index = _index(_write_llvip(tmp_path / "llvip", n=40))
    files = [s.image for s in index.samples]
    started = []
    real = cache.decode_resized

    def counted(path, size):
        started.append(path)
        return real(path, size)

    monkeypatch.setattr(cache, "decode_resized", counted)
    images = np.zeros((len(files), 40, 48, 3), np.uint8)
    results = _decoded(images, files, (48, 40), workers=2)
    for taken, _ in enumerate(results, start=1):
        # Never more than 4 * workers files submitted past what the consumer has taken.
        assert len(started) <= taken + 4 * 2
    assert len(started) == len(files)


def test_worker_count_from_env_and_affinity(monkeypatch):
    monkeypatch.delenv("CAPSTUDY_DECODE_WORKERS", raising=False)
    import os

    assert 1 <= decode_workers() <= min(len(os.sched_getaffinity(0)), cache.MAX_DECODE_WORKERS)
    monkeypatch.setenv("CAPSTUDY_DECODE_WORKERS", "3")
    assert decode_workers() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("CAPSTUDY_DECODE_WORKERS", bad)
        with pytest.raises(CapstudyError, match="CAPSTUDY_DECODE_WORKERS.*integer >= 1"):
            decode_workers()
