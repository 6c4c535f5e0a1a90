"""The Ray Tune trainable: one trial = :func:`capstudy.engine.run_trial` under Ray.

It strips the study-level keys the searcher added, builds the frozen
:class:`~capstudy.config.TrialConfig`, resolves the initialization to a local weights file,
restores from Ray's last checkpoint when the trial is retried or the study resumed, and
forwards every epoch's report to Ray with the checkpoint the engine just wrote (Ray copies it
into the study's storage before the next epoch overwrites it). No MLflow here: the driver's
callback records everything, so one process writes to the tracking store.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune

from capstudy.config import TrialConfig
from capstudy.errors import storage_fault, storage_write_error
from capstudy.launch.checkpoints import restore_verified
from capstudy.launch.searcher import STUDY_KEYS, TRIAL_KEY

CHECKPOINT_FILE = "checkpoint.pt"
DATA_FINGERPRINT = "_data_fingerprint"
VAL_FINGERPRINT = "_val_fingerprint"
NODE_ID = "_node_id"  # which Ray node ran the trial (multi-node tests, debugging)
# A damaged checkpoint the trial skipped on restore (reported once; the driver warns, tags).
CHECKPOINT_NOTE = "_checkpoint_note"


log = logging.getLogger(__name__)


def trial_config(params: dict[str, Any]) -> TrialConfig:
    """The trial's config from a Ray config dict (study keys removed, threads defaulted)."""
    values = {k: v for k, v in params.items() if k not in STUDY_KEYS}
    if not values.get("threads"):
        # Ray sets OMP_NUM_THREADS to the trial's CPU share; torch must follow it, since
        # oversubscribed trials on one node are slower than fewer threads each.
        values["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    return TrialConfig.from_dict(values, source=f"trial {params.get(TRIAL_KEY, '?')}")


def restore_checkpoint(
    checkpoint: Any, dest: str, verify: Callable[[Path], None] | None = None
) -> Path | None:
    """The trial's newest good Ray checkpoint copied under ``dest``; None: start from scratch.

    A snapshot naming a deleted checkpoint is repaired before the trial starts
    (:mod:`capstudy.launch.checkpoints`; Ray's own restore would fail first). This guards the
    remaining cases: a checkpoint removed from storage after that check, or one that
    ``verify`` finds damaged. The trial then resumes from an older checkpoint on storage, or
    starts again from epoch 1; its seeds make it repeat the same epochs, which costs time but
    never a wrong result. See :func:`~capstudy.launch.checkpoints.restore_verified`.
    """
    return restore_verified(checkpoint, dest, verify).folder


def capstudy_trainable(params: dict[str, Any]) -> None:
    """Run one trial under Ray Tune (function trainable)."""
    from capstudy.data import dataset_fingerprint
    from capstudy.engine import run_trial
    from capstudy.engine.checkpoint import verify_checkpoint_folder

    config = trial_config(params)
    init_path, lineage = None, {}
    if config.init != "random":  # only then does a trial need the registry (and MLflow)
        from capstudy.launch.trialfacts import lineage_report
        from capstudy.pretrain import init_weights

        init_path, ref = init_weights(config)
        lineage = lineage_report(ref)  # the driver tags the run with the weights' version
    roots = dict(config.data_roots)
    fingerprint = dataset_fingerprint(config.train_domain, "train", roots)
    val_fp = dataset_fingerprint(config.train_domain, "val", roots, config.val_fraction)
    node_id = ray.get_runtime_context().get_node_id()
    checkpoint = tune.get_checkpoint()
    with tempfile.TemporaryDirectory(prefix="capstudy-trial-") as tmp:
        restored = restore_verified(
            checkpoint, os.path.join(tmp, "restored"), verify_checkpoint_folder
        )
        folder = restored.folder
        resume_from = folder / CHECKPOINT_FILE if folder is not None else None
        checkpoint_dir = Path(tmp) / "checkpoint"
        note = {CHECKPOINT_NOTE: restored.note} if restored.note else {}

        def report(metrics: dict[str, float], written: Path | None) -> None:
            ckpt = tune.Checkpoint.from_directory(str(written)) if written else None
            extra = {
                DATA_FINGERPRINT: fingerprint,
                VAL_FINGERPRINT: val_fp,
                NODE_ID: node_id,
                **lineage,
                **note,
            }
            note.clear()  # once: the driver warns and tags the run on the first report
            with refused_writes(
                f"the study's storage (the trial's folder {tune.get_context().get_trial_dir()})"
            ):
                tune.report({**metrics, **extra}, checkpoint=ckpt)

        with refused_writes(f"this node's temporary folder {tmp}"):
            run_trial(
                config,
                report,
                init_path=init_path,
                checkpoint_dir=checkpoint_dir,
                resume_from=resume_from,
                # A packed trial (gpu: 0.25) caps its CUDA memory at its share.
                gpu_share=ray.get_runtime_context().get_assigned_resources().get("GPU"),
            )


@contextmanager
def refused_writes(where: str) -> Iterator[None]:
    """A write refused in the block (full, read-only) raises a
    :class:`~capstudy.errors.StorageWriteError` naming ``where`` and the fix. Ray copies a
    checkpoint folder in place, so a copy cut short stays unregistered: the trial resumes
    from its last registered checkpoint, which a restore checks before trusting it."""
    try:
        yield
    except OSError as exc:
        fault = storage_fault(exc)
        if fault is None:
            raise
        then = "resume the study with `capstudy launch --space STUDY --resume`"
        raise storage_write_error(where, fault, then) from None
