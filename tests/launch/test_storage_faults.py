"""A write the storage refuses (full, read-only) is named with where and what to fix; the
faults are real: ``/dev/full`` answers every write with ENOSPC, and a read-only tmpfs with
EROFS (mounted where this user may mount; skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mounts import tmpfs

from capstudy.errors import StorageWriteError, storage_fault, storage_write_error
from capstudy.launch.trainable import refused_writes
from capstudy.storage import place
from capstudy.util import atomic_write_text


def _write_to_full_disk() -> None:
    with open("/dev/full", "w") as out:
        out.write("x" * 10)
        out.flush()


def test_a_full_disk_is_found_in_the_error_chain():
    with pytest.raises(RuntimeError) as wrapped:
        try:
            _write_to_full_disk()
        except OSError as exc:
            raise RuntimeError("wrapped by a library") from exc
    fault = storage_fault(wrapped.value)
    assert fault is not None and fault.errno == 28
    message = str(storage_write_error("the study's storage /s", fault, "resume it"))
    assert message == (
        "cannot write to the study's storage /s: No space left on device. Free space there, "
        "then resume it"
    )


def test_other_errors_are_not_storage_faults():
    assert storage_fault(FileNotFoundError(2, "No such file or directory")) is None
    assert storage_fault(ValueError("x")) is None


def test_a_trial_write_refused_by_its_disk_names_the_place():
    expected = "cannot write to this node's temporary folder /t: No space left on device"
    with (
        pytest.raises(StorageWriteError, match=expected),
        refused_writes("this node's temporary folder /t"),
    ):
        _write_to_full_disk()
    # Not a refusal: passes through unchanged.
    with pytest.raises(FileNotFoundError), refused_writes("x"):
        Path("/nonexistent/dir/file").read_text()


@pytest.fixture
def read_only_dir(tmp_path):
    with tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        yield folder


def test_a_read_only_storage_is_found_by_a_probe_and_leaves_nothing(read_only_dir: Path):
    refused = place(read_only_dir).refused_write()
    assert refused is not None and refused.errno == 30
    assert "Make it writable again" in str(storage_write_error("x", refused, "y"))
    with pytest.raises(OSError):
        atomic_write_text(read_only_dir / "state.json", "{}")
    assert list(read_only_dir.iterdir()) == []  # no temporary or partial file left


def test_a_writable_storage_passes_the_probe_and_keeps_nothing(tmp_path: Path):
    assert place(tmp_path).refused_write() is None
    assert list(tmp_path.iterdir()) == []
