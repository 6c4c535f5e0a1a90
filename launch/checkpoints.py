"""A trial's files on the study's storage: its result log, and the checkpoint it resumes from.

Ray 2.60 keeps ``CheckpointConfig(num_to_keep)`` checkpoints per trial and deletes an older one
the moment it registers a newer one, but it writes the experiment snapshot that ``--resume``
restores only every 10 s or more. A driver killed in between leaves a snapshot that names a
deleted checkpoint, and the restored trial fails with "Could not recover from checkpoint as it
does not exist on storage anymore" (the kill test hit it in about one run in four).
:func:`repair_checkpoint` runs before a restored trial starts: when the checkpoint it names is
missing, the trial resumes from the newest checkpoint on storage that the driver had taken the
result of (its row is in the trial's result log), else from scratch. Either way the scheduler
had seen every epoch up to that checkpoint, and the trial reports every epoch after it again,
so its ASHA decisions and final results are those of an uninterrupted run.

A checkpoint that exists can still be damaged: Ray's copy of it to storage cut short by a
killed process or a full disk. :func:`restore_verified` runs inside the trial: it checks the
checkpoint it was handed (the trainable's ``verify``, e.g. the engine's sha256 and safe load)
and, when that is damaged, the trial's older checkpoints on storage, newest first; with none
good left the trial starts from scratch. What it skipped comes back as a note the trial
reports, so the driver warns and tags the run.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capstudy.errors import DamagedCheckpoint

log = logging.getLogger(__name__)
_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d+)$")
CHECKPOINT_DIR_NAME = "checkpoint_dir_name"  # the key Ray adds to a result with a checkpoint


def result_log(trial: Any) -> str | None:
    """A trial's ``result.json``: the storage copy (synced at the end of fit), else the
    driver's staging copy; None when neither exists.

    The storage copy is read through the trial's own storage filesystem (``trial.path`` is a
    path on it: local, or a bucket key with ``--storage s3://...``), as Ray wrote it.
    """
    fs = getattr(getattr(trial, "storage", None), "storage_filesystem", None)
    if fs is not None and trial.path:
        from pyarrow.fs import FileType

        remote = f"{trial.path}/result.json"
        try:
            if fs.get_file_info(remote).type == FileType.File:
                with fs.open_input_stream(remote) as stream:
                    return stream.read().decode("utf-8")
        except OSError:
            pass  # the store is unreachable: fall back to the driver's copy
    found = [Path(p) / "result.json" for p in (trial.path, trial.local_path) if p]
    path = next((f for f in found if f.is_file()), None)
    return path.read_text() if path is not None else None


def result_rows(trial: Any) -> list[dict]:
    """Every row of the trial's result log (unreadable trailing lines skipped)."""
    text = result_log(trial)
    rows = []
    for line in (text or "").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed driver
    return rows


def _checkpoint_folders(trial: Any) -> dict[str, int]:
    """Checkpoint folder name -> index, for the trial's folders on storage."""
    from pyarrow.fs import FileSelector, FileType

    fs = trial.storage.storage_filesystem
    infos = fs.get_file_info(FileSelector(trial.storage.trial_fs_path, allow_not_found=True))
    found = {}
    for info in infos:
        match = _CHECKPOINT_DIR.match(info.base_name)
        if match and info.type == FileType.Directory:
            found[info.base_name] = int(match.group(1))
    return found


def _exists(checkpoint: Any) -> bool:
    from pyarrow.fs import FileType

    return checkpoint.filesystem.get_file_info(checkpoint.path).type != FileType.NotFound


def repair_checkpoint(trial: Any) -> str | None:
    """Point a restored trial at a checkpoint that exists; returns what changed, or None.

    Call before the trial starts (the scheduler does, once per trial per driver). A trial with
    no checkpoint is left alone. Older checkpoints the snapshot lists but storage lost are
    forgotten too: Ray would otherwise fail deleting them when the trial registers its next
    one, and skip advancing the trial's checkpoint numbering.
    """
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult

    checkpoint = trial.checkpoint
    if checkpoint is None:
        return None
    manager = trial.run_metadata.checkpoint_manager
    if _exists(checkpoint):
        listed = manager._checkpoint_results
        kept = [r for r in listed if _exists(r.checkpoint)]
        if len(kept) == len(listed):
            return None
        manager._checkpoint_results = kept
        trial.invalidate_json_state()
        trial.run_metadata.invalidate_cache()
        change = f"forgot {len(listed) - len(kept)} older checkpoint(s) gone from storage"
        log.info("trial %s: %s", trial, change)
        return change
    folders = _checkpoint_folders(trial)
    rows = {r[CHECKPOINT_DIR_NAME]: r for r in result_rows(trial) if r.get(CHECKPOINT_DIR_NAME)}
    usable = sorted((i, name) for name, i in folders.items() if name in rows)
    # New checkpoints are numbered after every folder there (none is overwritten).
    trial.storage.current_checkpoint_index = max(folders.values(), default=-1)
    if usable:
        _, name = usable[-1]
        row = rows[name]
        storage = trial.storage
        found = Checkpoint(f"{storage.trial_fs_path}/{name}", storage.storage_filesystem)
        result = _TrainingResult(checkpoint=found, metrics=row)
        manager._latest_checkpoint_result = result
        manager._checkpoint_results = [result]
        trial.run_metadata.last_result = dict(row)
        change = f"resumes from {name} (epoch {row.get('epoch')})"
    else:
        manager._latest_checkpoint_result = None
        manager._checkpoint_results = []
        trial.run_metadata.last_result = {}
        change = "restarts from scratch"
    trial.invalidate_json_state()
    trial.run_metadata.invalidate_cache()
    log.warning(
        "trial %s: its checkpoint %s is gone from storage (a driver was killed between Ray "
        "deleting it and saving the experiment); it %s",
        trial,
        Path(checkpoint.path).name,
        change,
    )
    return change


@dataclass(frozen=True)
class Restored:
    """What :func:`restore_verified` restored.

    Attributes:
        folder: A local copy of the newest good checkpoint; None: start from scratch.
        note: What was skipped and why ("" when the checkpoint Ray named was good).
    """

    folder: Path | None
    note: str = ""


def older_checkpoints(checkpoint: Any) -> list[Any]:
    """The trial's checkpoints on storage older than ``checkpoint``, newest first."""
    from pyarrow.fs import FileSelector, FileType
    from ray.train import Checkpoint

    parent, name = posixpath.split(checkpoint.path.rstrip("/"))
    match = _CHECKPOINT_DIR.match(name)
    if match is None:
        return []
    fs = checkpoint.filesystem
    found = []
    for info in fs.get_file_info(FileSelector(parent, allow_not_found=True)):
        other = _CHECKPOINT_DIR.match(info.base_name)
        if other and info.type == FileType.Directory and int(other[1]) < int(match[1]):
            found.append((int(other[1]), info.path))
    return [Checkpoint(path, fs) for _, path in sorted(found, reverse=True)]


def restore_verified(
    checkpoint: Any, dest: str, verify: Callable[[Path], None] | None = None
) -> Restored:
    """Copy the trial's newest good checkpoint into a folder under ``dest``.

    Tries ``checkpoint`` (Ray's latest), then :func:`older_checkpoints`. A candidate is
    skipped when it is gone from storage or ``verify(folder)`` raises
    :class:`~capstudy.errors.DamagedCheckpoint`; the note names each one skipped.
    """
    if checkpoint is None:
        return Restored(None)
    skipped: list[str] = []
    for candidate in [checkpoint, *older_checkpoints(checkpoint)]:
        name = posixpath.basename(candidate.path.rstrip("/"))
        folder = Path(dest) / name
        try:
            folder = Path(candidate.to_directory(str(folder)))
            if verify is not None:
                verify(folder)
        except DamagedCheckpoint as exc:
            skipped.append(str(exc).replace(str(folder), candidate.path))
            continue
        except (FileNotFoundError, OSError) as exc:
            skipped.append(f"checkpoint {candidate.path} is gone from storage ({exc})")
            continue
        if skipped:
            return Restored(folder, _skip_note(skipped, f"resumed from {name}"))
        return Restored(folder)
    return Restored(None, _skip_note(skipped, "restarted from scratch"))


def _skip_note(skipped: list[str], outcome: str) -> str:
    note = "; ".join(skipped) + f"; the trial {outcome}"
    log.warning("%s", note)
    return note
