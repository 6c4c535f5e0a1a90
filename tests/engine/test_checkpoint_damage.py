"""A damaged checkpoint is refused with a message naming it, never loaded as good."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy.engine import CHECKPOINT_NAME, run_trial
from capstudy.engine.checkpoint import (
    digest_path,
    file_sha256,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from capstudy.errors import DamagedCheckpoint


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _saved(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path, {"epoch": 3, "config_hash": "h", "w": torch.arange(5000)})


def test_a_checkpoint_is_written_with_its_digest(tmp_path: Path):
    path = _saved(tmp_path)
    assert digest_path(path).read_text().strip() == file_sha256(path)
    assert read_checkpoint(path)["epoch"] == 3
    assert not list(tmp_path.glob(".*tmp*"))  # no temporaries left


def test_a_truncated_checkpoint_is_refused_naming_it(tmp_path: Path):
    path = _saved(tmp_path)
    _truncate(path)
    with pytest.raises(DamagedCheckpoint, match="does not match the sha256") as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value)


def test_a_truncated_checkpoint_without_digest_fails_its_safe_load(tmp_path: Path):
    path = _saved(tmp_path)
    digest_path(path).unlink()  # a copy cut short before the digest got there
    _truncate(path)
    with pytest.raises(DamagedCheckpoint, match="cannot be loaded"):
        read_checkpoint(path)


def test_a_flipped_byte_is_caught_by_the_digest(tmp_path: Path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, loads (maybe), but not what was written
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpoint, match="does not match"):
        read_checkpoint(path)


def test_empty_and_missing_checkpoints_are_damaged(tmp_path: Path):
    path = _saved(tmp_path)
    path.write_bytes(b"")
    with pytest.raises(DamagedCheckpoint, match="empty"):
        read_checkpoint(path)
    with pytest.raises(DamagedCheckpoint, match="missing"):
        read_checkpoint(tmp_path / "nothing.pt")


def test_a_checkpoint_without_digest_still_loads(tmp_path: Path):
    """Checkpoints written before digests existed (or whose digest was lost) still resume."""
    path = _saved(tmp_path)
    digest_path(path).unlink()
    assert load_checkpoint(path, "h")["epoch"] == 3


def test_resume_from_a_truncated_trial_checkpoint_says_what_to_do(tmp_path: Path):
    run_trial(make_tiny_config(epochs=1), checkpoint_dir=tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    _truncate(path, 0.9)
    with pytest.raises(DamagedCheckpoint, match="older checkpoint.*or start it afresh") as caught:
        run_trial(make_tiny_config(epochs=1), resume_from=tmp_path)
    assert str(path) in str(caught.value)
