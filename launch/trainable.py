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
from pathlib import Path
from typing import Any

import ray
from ray import tune

from capstudy.config import TrialConfig
from capstudy.launch.searcher import STUDY_KEYS, TRIAL_KEY

CHECKPOINT_FILE = "checkpoint.pt"
DATA_FINGERPRINT = "_data_fingerprint"
VAL_FINGERPRINT = "_val_fingerprint"
NODE_ID = "_node_id"  # which Ray node ran the trial (multi-node tests, debugging)


log = logging.getLogger(__name__)


def trial_config(params: dict[str, Any]) -> TrialConfig:
    """The trial's config from a Ray config dict (study keys removed, threads defaulted)."""
    values = {k: v for k, v in params.items() if k not in STUDY_KEYS}
    if not values.get("threads"):
        # Ray sets OMP_NUM_THREADS to the trial's CPU share; torch must follow it, since
        # oversubscribed trials on one node are slower than fewer threads each.
        values["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    return TrialConfig.from_dict(values, source=f"trial {params.get(TRIAL_KEY, '?')}")


def restore_checkpoint(checkpoint: Any, dest: str) -> Path | None:
    """The trial's Ray checkpoint copied to ``dest``; None when it is gone.

    A snapshot naming a deleted checkpoint is repaired before the trial starts
    (:mod:`capstudy.launch.checkpoints`; Ray's own restore would fail first). This guards the
    remaining case, a checkpoint removed from storage after that check: the trial starts again
    from epoch 1, and its seeds make it repeat the same epochs, which costs time but never a
    wrong result.
    """
    if checkpoint is None:
        return None
    try:
        return Path(checkpoint.to_directory(dest))
    except (FileNotFoundError, OSError) as exc:
        log.warning("checkpoint %s is gone (%s): the trial restarts from epoch 1", checkpoint, exc)
        return None


def capstudy_trainable(params: dict[str, Any]) -> None:
    """Run one trial under Ray Tune (function trainable)."""
    from capstudy.data import dataset_fingerprint
    from capstudy.engine import run_trial

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
        restored = restore_checkpoint(checkpoint, os.path.join(tmp, "restored"))
        resume_from = restored / CHECKPOINT_FILE if restored is not None else None
        checkpoint_dir = Path(tmp) / "checkpoint"

        def report(metrics: dict[str, float], written: Path | None) -> None:
            ckpt = tune.Checkpoint.from_directory(str(written)) if written else None
            extra = {
                DATA_FINGERPRINT: fingerprint,
                VAL_FINGERPRINT: val_fp,
                NODE_ID: node_id,
                **lineage,
            }
            tune.report({**metrics, **extra}, checkpoint=ckpt)

        run_trial(
            config,
            report,
            init_path=init_path,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
            # A packed trial (gpu: 0.25) caps its CUDA memory at its share.
            gpu_share=ray.get_runtime_context().get_assigned_resources().get("GPU"),
        )
