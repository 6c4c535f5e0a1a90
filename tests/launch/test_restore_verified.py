"""Inside a trial: a damaged checkpoint on storage falls back to the newest good older one,
else to a fresh start, and the note says which was skipped and why."""

from __future__ import annotations

from pathlib import Path

import torch
from ray import tune

from capstudy.engine.checkpoint import CHECKPOINT_NAME, save_checkpoint, verify_checkpoint_folder
from capstudy.launch.checkpoints import older_checkpoints, restore_verified


def _trial_folder(tmp_path: Path, epochs: int) -> Path:
    """A trial's folder on storage with one engine checkpoint per epoch."""
    trial = tmp_path / "storage" / "trial"
    for epoch in range(1, epochs + 1):
        payload = {"epoch": epoch, "config_hash": "h", "w": torch.full((2000,), epoch)}
        save_checkpoint(trial / f"checkpoint_{epoch - 1:06d}", payload)
    return trial


def _latest(trial: Path) -> tune.Checkpoint:
    return tune.Checkpoint.from_directory(str(sorted(trial.glob("checkpoint_*"))[-1]))


def _truncate(folder: Path) -> None:
    path = folder / CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[:100])


def _epoch(folder: Path) -> int:
    return int(torch.load(folder / CHECKPOINT_NAME, weights_only=True)["epoch"])


def test_a_good_checkpoint_is_restored_without_a_note(tmp_path):
    trial = _trial_folder(tmp_path, 3)
    restored = restore_verified(_latest(trial), str(tmp_path / "r"), verify_checkpoint_folder)
    assert restored.note == "" and _epoch(restored.folder) == 3


def test_a_truncated_checkpoint_falls_back_to_the_one_before(tmp_path):
    trial = _trial_folder(tmp_path, 3)
    _truncate(trial / "checkpoint_000002")
    restored = restore_verified(_latest(trial), str(tmp_path / "r"), verify_checkpoint_folder)
    assert _epoch(restored.folder) == 2
    # Names the damaged file where it lies on storage (not the trial's temporary copy).
    assert str(trial / "checkpoint_000002" / CHECKPOINT_NAME) in restored.note
    assert "does not match the sha256" in restored.note
    assert restored.note.endswith("the trial resumed from checkpoint_000001")
    assert str(tmp_path / "r") not in restored.note


def test_no_good_checkpoint_left_means_a_fresh_start(tmp_path):
    trial = _trial_folder(tmp_path, 2)
    for folder in trial.glob("checkpoint_*"):
        _truncate(folder)
    restored = restore_verified(_latest(trial), str(tmp_path / "r"), verify_checkpoint_folder)
    assert restored.folder is None
    assert "checkpoint_000001" in restored.note and "checkpoint_000000" in restored.note
    assert restored.note.endswith("the trial restarted from scratch")


def test_only_older_checkpoints_are_candidates(tmp_path):
    trial = _trial_folder(tmp_path, 4)
    handed = tune.Checkpoint.from_directory(str(trial / "checkpoint_000002"))
    names = [Path(c.path).name for c in older_checkpoints(handed)]
    assert names == ["checkpoint_000001", "checkpoint_000000"]  # newest first, none newer
