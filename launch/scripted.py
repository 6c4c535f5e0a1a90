"""A scripted trainable: a study's full orchestration with no model trained.

Used by the full_grid-shape benchmark (``benchmarks/full_grid_shape.py``) and its slow test to
drive the real driver, searcher, per-cell scheduler, recorder and MLflow store at a study's
real shape: every trial reports every epoch with the metric volume of a real detection trial
(in-domain and every evaluation domain, mAP, mAP@.5 and one AP per class, capacity, timing).

Learning curves are drawn per cell and per trial, deterministically from the trial's config
(no wall-clock, no global RNG), so ASHA has real decisions to make and an interrupted and
resumed study must end with exactly the uninterrupted study's per-trial results:
``value(epoch) = plateau * (1 - exp(-epoch / tau)) + noise`` where the plateau grows with
capacity and pretraining, ``tau`` and a penalty depend on the distance of ``lr`` from a
per-cell optimum, and the noise is seeded by (trial key, epoch).

Checkpoints (a tiny JSON file) are written at ASHA rungs, every ``SCRIPTED_CHECKPOINT_EVERY``
epochs and at the end, like a real trial with ``checkpoint_every``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune

from capstudy import keys
from capstudy.errors import DamagedCheckpoint
from capstudy.launch.searcher import TRIAL_KEY
from capstudy.launch.trainable import DATA_FINGERPRINT, restore_checkpoint

STATE_FILE = "scripted.json"
CLASSES = ("person", "bicycle", "car", "dog")  # FLIR's four evaluated classes
# Seconds one scripted epoch sleeps (0: as fast as the driver takes results).
EPOCH_SECONDS_ENV = "SCRIPTED_EPOCH_SECONDS"
CHECKPOINT_EVERY_ENV = "SCRIPTED_CHECKPOINT_EVERY"
RUNGS_ENV = "SCRIPTED_RUNGS"  # comma-separated rung epochs (always checkpointed)
_BASE_PARAMS = {"efficientnet_b0": 3.6e6, "mobilenetv3_small": 0.93e6}


def _unit(*parts: Any) -> float:
    """A uniform [0, 1) number fixed by ``parts`` (same on every machine and run)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def curve(config: dict[str, Any], epoch: int) -> float:
    """The scripted in-domain validation mAP@.5 of a trial after ``epoch`` epochs."""
    phi = int(config.get("phi", 0))
    pretrained = {"random": 0.0, "imagenet": 1.0, "imagenet_coco": 1.5}.get(config["init"], 0.5)
    cell = (config["family"], phi, config["init"], config.get("train_domain"), config.get("seed"))
    # Pretraining helps more the larger the model: the threshold a study looks for.
    plateau = 0.25 + 0.04 * (phi + 7) + pretrained * 0.02 * max(phi + 5, 0)
    plateau += 0.02 * (_unit("cell", *cell) - 0.5)
    best_lr = 10 ** (-3 + _unit("lr", *cell))
    miss = abs(math.log10(float(config.get("lr", best_lr))) - math.log10(best_lr))
    tau = 4.0 * (1 + 2 * miss)
    noise = 0.01 * (_unit("noise", config[TRIAL_KEY], epoch) - 0.5)
    return max(0.0, plateau * (1 - math.exp(-epoch / tau)) * (1 - 0.3 * miss) + noise)


def metrics_for(config: dict[str, Any], epoch: int, domains: list[str]) -> dict[str, float]:
    """One epoch's report with a real detection trial's keys."""
    value = curve(config, epoch)
    rng = random.Random(f"{config[TRIAL_KEY]}:{epoch}")
    phi = int(config.get("phi", 0))
    params = _BASE_PARAMS.get(config["family"], 1e6) * 2.0**phi
    out = {
        keys.M_EPOCH: float(epoch),
        keys.M_TRAIN_LOSS: 2.0 / (1 + epoch) + 0.1 * rng.random(),
        keys.M_BACKBONE_PARAMS: params,
        keys.M_DETECTOR_PARAMS: params * 1.3 + 1e5,
        keys.M_MACS: params * 300.0,
        keys.M_IMAGES_PER_S: 100 + rng.random(),
        keys.M_EPOCH_TIME: 1.0 + rng.random(),
        keys.val_metric("map50"): value,
        keys.val_metric("map"): value * 0.55,
    }
    for name in CLASSES:
        out[keys.val_metric(keys.class_ap(name))] = value * (0.7 + 0.6 * rng.random())
    train = str(config.get("train_domain", ""))
    for domain in domains:
        # Shift domains score lower: thermal more than cross-dataset.
        shift = 1.0 if domain == train else (0.6 if domain.endswith("/ir") else 0.8)
        out[keys.eval_metric(domain, "map50")] = value * shift
        out[keys.eval_metric(domain, "map")] = value * shift * 0.55
        for name in CLASSES:
            ap = value * shift * (0.7 + 0.6 * rng.random())
            out[keys.eval_metric(domain, keys.class_ap(name))] = ap
    return out


def scripted_epoch(folder: Path) -> int:
    """The epoch a scripted checkpoint folder holds.

    Raises:
        DamagedCheckpoint: its state file is missing or cut short (the trial then resumes
            from an older checkpoint, see :func:`restore_checkpoint`).
    """
    path = Path(folder) / STATE_FILE
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedCheckpoint(f"checkpoint {path} is unreadable ({exc})") from None


def scripted_trainable(config: dict[str, Any]) -> None:
    """A function trainable reporting :func:`metrics_for` every epoch (see module docstring)."""
    epochs = int(config["epochs"])
    domains = list(config.get("eval_domains") or [])
    pause = float(os.environ.get(EPOCH_SECONDS_ENV, "0") or 0)
    every = int(os.environ.get(CHECKPOINT_EVERY_ENV, "5") or 5)
    rungs = {int(r) for r in os.environ.get(RUNGS_ENV, "").split(",") if r.strip()}
    start = 0
    with tempfile.TemporaryDirectory(prefix="scripted-restore-") as tmp:
        folder = restore_checkpoint(tune.get_checkpoint(), tmp, scripted_epoch)
        if folder is not None:
            start = scripted_epoch(folder)
    fingerprint = (
        "scripted-" + hashlib.sha256(str(config.get("train_domain")).encode()).hexdigest()[:12]
    )
    for epoch in range(start + 1, epochs + 1):
        if pause:
            time.sleep(pause)
        metrics = {**metrics_for(config, epoch, domains), DATA_FINGERPRINT: fingerprint}
        if epoch % every == 0 or epoch in rungs or epoch == epochs:
            with tempfile.TemporaryDirectory(prefix="scripted-") as tmp:
                (Path(tmp) / STATE_FILE).write_text(json.dumps({"epoch": epoch}))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(metrics)


def crash_once_trainable(config: dict[str, Any]) -> None:
    """A trial that checkpoints every epoch (``epoch.txt``) and, when it starts without a
    checkpoint, dies hard (``os._exit``, no Python exception) after epoch 2; started from a
    checkpoint, it runs to ``config["epochs"]``. ``perf/restored_from`` reports the epoch it
    resumed after (0: from scratch). Used by the retry and resume tests.
    """
    start, restored = 1, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            restored = int((Path(folder) / "epoch.txt").read_text())
        start = restored + 1
    for epoch in range(start, int(config["epochs"]) + 1):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "epoch.txt").write_text(str(epoch))
            metrics = {"epoch": epoch, "val/map50": 0.1 * epoch, "perf/restored_from": restored}
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        if epoch == 2 and checkpoint is None:
            os._exit(1)
