"""The decoded cache: reuse, invalidation, atomicity, and concurrent builders."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
from data_fixtures import voc, write_llvip

from capstudy import paths
from capstudy.data import get_split
from capstudy.data.cache import COMPLETE


def test_reused_until_the_source_changes(tmp_path):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip"))}
    first = get_split("llvip/ir", "train", 32, roots=roots)
    stamp = (first.path / "images.npy").stat().st_mtime_ns
    again = get_split("llvip/ir", "train", 32, roots=roots)
    assert again.path == first.path and again.fingerprint == first.fingerprint
    assert (again.path / "images.npy").stat().st_mtime_ns == stamp  # not rebuilt
    # Another size or a relabelled file is another entry.
    assert get_split("llvip/ir", "train", 16, roots=roots).path != first.path
    voc(tmp_path / "llvip" / "Annotations" / "010001.xml", [("person", 1, 1, 30, 30)])
    changed = get_split("llvip/ir", "train", 32, roots=roots)
    assert changed.path != first.path
    np.testing.assert_allclose(changed.boxes[0], [[0, 0, 24, 30]])  # 40x32 → 32x32


def test_half_written_entry_is_never_used(tmp_path):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip"))}
    good = get_split("llvip/rgb", "train", 32, roots=roots)
    folder = good.path
    expected = np.array(good.images)
    # Simulate a build killed before its marker: garbage arrays, no COMPLETE.
    (folder / COMPLETE).unlink()
    np.save(folder / "images.npy", np.zeros_like(expected))
    tmp = folder.parent / f".{folder.name}.tmp-123-dead"
    tmp.mkdir()
    rebuilt = get_split("llvip/rgb", "train", 32, roots=roots)
    assert (rebuilt.path / COMPLETE).is_file()
    np.testing.assert_array_equal(rebuilt.images, expected)
    assert not tmp.exists()  # the stale temporary folder was cleaned up


def _build(root: str, home: str, queue) -> None:
    os.environ["CAPSTUDY_HOME"] = home
    split = get_split("llvip/ir", "eval", 24, roots={"llvip": root})
    queue.put((str(split.path), float(split.images.mean())))


def test_concurrent_builders_agree(tmp_path):
    root = str(write_llvip(tmp_path / "llvip", n_train=1, n_val=6))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build, args=(root, str(paths.home()), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [queue.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    assert len(set(results)) == 1  # one entry, identical content
    entries = list((paths.cache_root() / "llvip").glob("ir-eval-*"))
    assert len([e for e in entries if not e.name.endswith(".lock")]) == 1
