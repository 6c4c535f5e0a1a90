"""Pretraining stages that make the ``imagenet`` and ``imagenet_coco`` initializations.

* ``imagenet``: classification on class-per-folder data (default the synthetic proxy
  ``synth_imagenet/rgb``; ``data=DIR`` reads a real ImageNet folder as dataset ``imagenet``).
* ``coco``: FCOS detection on COCO-format data (default ``synth_coco/rgb``; ``data=DIR``
  reads a real COCO 2017 folder), starting from the same variant's ``imagenet`` weights,
  which are made first when missing. Init ``imagenet_coco`` means these weights.

Both stages are ordinary trials (:func:`capstudy.engine.run_trial`) with the pretraining
recipe of :mod:`capstudy.recipes`. Each run is logged in the MLflow experiment
``capstudy-pretrain`` and its weights registered as a model version (:mod:`capstudy.registry`).

Reuse. :func:`ensure_weights` reuses the newest version made with the same *settings hash*
(data fingerprint + recipe + epochs + image size + image cap, and for ``coco`` the
``imagenet`` run it started from); anything else trains a new version. Trials resolve the
version the registry alias ``current`` points at: the one the last pretraining request made
or reused (:func:`resolve_init`), so a study's driver pretrains (or reuses) with the study's
settings and its trials then get exactly those weights.

Concurrency. A file lock per registered name in ``<home>/locks`` makes two processes on one
machine asking for the same weights train them once (the second waits, then reuses). The
lock does not span machines: on a cluster the launcher runs every pretraining stage once,
before any trial starts, and trials only read the registry. Two studies with different
pretraining settings running at the same time would move the ``current`` alias under each
other; run them one after the other.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capstudy import keys, paths, registry, tracking
from capstudy.config import INIT_CHOICES, TrialConfig
from capstudy.errors import CapstudyError
from capstudy.recipes import STAGES, STAGES_FOR_INIT, recipe
from capstudy.registry import WeightsRef, registered_name
from capstudy.scaling import DEFAULT_PRESET
from capstudy.util import named_lock
from capstudy.variants import Variant

DEFAULT_DATASET = {"imagenet": "synth_imagenet", "coco": "synth_coco"}
REAL_DATASET = {"imagenet": "imagenet", "coco": "coco"}  # the dataset ``--data DIR`` names
# Config keys that change where or how fast a stage runs, not the weights it makes.
# How a stage runs, not what it learns: never a reason to pretrain again.
_NOT_IN_HASH = ("data_roots", "device", "threads", "amp", "hpo_keys", "deterministic")
# The model a stage trains, beyond its config: part of the weights' identity, so weights made
# by an older model (the ImageNet classifier before it kept timm's conv_head) are not reused.
MODEL_REVISION = {"imagenet": "classifier+conv_head", "coco": "fcos"}

Say = Callable[[str], None]


@dataclass(frozen=True)
class StageSettings:
    """What one pretraining stage trains on and for how long.

    Attributes:
        stage: ``imagenet`` or ``coco``.
        dataset: Dataset name (``synth_imagenet``, ``imagenet``, ``synth_coco``, ``coco``).
        roots: Dataset name -> folder, for datasets outside the data root.
        epochs: Training epochs.
        image_size: Square input size.
        max_train_images: Cap on training images (0 = all).
    """

    stage: str
    dataset: str
    roots: tuple[tuple[str, str], ...]
    epochs: int
    image_size: int
    max_train_images: int

    @property
    def domain(self) -> str:
        """The training domain (``dataset/rgb``)."""
        return f"{self.dataset}/rgb"


def stage_settings(
    stage: str,
    *,
    settings: Mapping[str, Any] | None = None,
    data: str | Path | None = None,
    epochs: int | None = None,
    roots: Mapping[str, str] | None = None,
) -> StageSettings:
    """Settings of ``stage``: the recipe, a study's ``pretrain`` section, then arguments.

    Args:
        stage: ``imagenet`` or ``coco``.
        settings: A study's ``pretrain`` section as a dict (keys ``imagenet``, ``coco``,
            ``epochs_<stage>``, ``image_size_<stage>``, ``max_train_images``).
        data: Folder of a real dataset in the stage's format (overrides the dataset).
        epochs: Epochs (overrides everything else).
        roots: Dataset name -> folder (a study's ``data`` section).

    Raises:
        CapstudyError: Unknown stage, or ``data`` is not a folder.
    """
    if stage not in STAGES:
        raise CapstudyError(f"unknown pretraining stage {stage!r}; choose one of {STAGES}")
    rec, given = recipe("pretrain", stage), dict(settings or {})
    dataset = given.get(stage) or DEFAULT_DATASET[stage]
    all_roots = dict(roots or {})
    if data is not None:
        folder = Path(data).expanduser().resolve()
        if not folder.is_dir():
            raise CapstudyError(f"--data {data}: not a folder ({stage} data in its format)")
        dataset = REAL_DATASET[stage]
        all_roots[dataset] = str(folder)
    return StageSettings(
        stage=stage,
        dataset=dataset,
        roots=tuple((k, v) for k, v in all_roots.items() if k == dataset),
        epochs=int(epochs or given.get(f"epochs_{stage}") or rec["epochs"]),
        image_size=int(given.get(f"image_size_{stage}") or rec["image_size"]),
        max_train_images=int(given.get("max_train_images", rec["max_train_images"])),
    )


def stage_config(variant: Variant, st: StageSettings) -> TrialConfig:
    """The trial config a stage trains with (the pretraining recipe + the settings)."""
    rec = recipe("pretrain", st.stage)
    values = {k: v for k, v in rec.items() if k in TrialConfig.field_names()}
    if variant.preset in ("free",):
        capacity = {"width": variant.scale.width, "depth": variant.scale.depth}
    else:
        capacity = {"phi": variant.phi, "preset": variant.preset}
    values.update(
        family=variant.family,
        **capacity,
        task="classification" if st.stage == "imagenet" else "detection",
        init="random" if st.stage == "imagenet" else "imagenet",
        train_domain=st.domain,
        eval_domains=(),
        epochs=st.epochs,
        image_size=st.image_size,
        max_train_images=st.max_train_images,
        data_roots=st.roots,
        seed=0,
    )
    return TrialConfig.from_dict(values, source=f"pretrain {st.stage}")


def settings_hash(config: TrialConfig, data_fingerprint: str, parent: WeightsRef | None) -> str:
    """Identity of the weights a stage would make (see the module doc)."""
    recipe_values = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_HASH}
    stage = "imagenet" if config.task == "classification" else "coco"
    blob = {
        "model": MODEL_REVISION[stage],
        "recipe": recipe_values,
        "data": data_fingerprint,
        "parent_run": parent.run_id if parent else None,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _identity(variant, stage, settings, data, epochs, roots, uri, fingerprints=None) -> tuple:
    """(stage settings, config, data fingerprint, parent ref or None, hash or None).

    ``fingerprints`` (``domain:train`` -> fingerprint, as the launch's node probe computed
    them) spares listing the dataset here: a driver may run where the data is not.
    """
    from capstudy.data import dataset_fingerprint
    from capstudy.data.fingerprints import split_key

    st = stage_settings(stage, settings=settings, data=data, epochs=epochs, roots=roots)
    config = stage_config(variant, st)
    known = fingerprints or {}
    fingerprint = known.get(split_key(st.domain, "train")) if data is None else None
    fingerprint = fingerprint or dataset_fingerprint(st.domain, "train", dict(st.roots))
    parent = None
    if stage == "coco":
        parent = find_weights(
            variant,
            "imagenet",
            settings=settings,
            roots=roots,
            tracking_uri=uri,
            fingerprints=fingerprints,
        )
        if parent is None:
            return st, config, fingerprint, None, None
    return st, config, fingerprint, parent, settings_hash(config, fingerprint, parent)


def find_weights(
    variant: Variant,
    stage: str,
    *,
    settings: Mapping[str, Any] | None = None,
    data: str | Path | None = None,
    epochs: int | None = None,
    roots: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> WeightsRef | None:
    """The registered version these settings would reuse, or None (nothing is trained).

    ``fingerprints``: the pretraining datasets' fingerprints, if known (see ``_identity``).
    """
    uri = tracking_uri or paths.default_tracking_uri()
    *_, digest = _identity(variant, stage, settings, data, epochs, roots, uri, fingerprints)
    if digest is None:
        return None
    return registry.find_version(registered_name(variant, stage), digest, uri)


def ensure_weights(
    variant: Variant,
    stage: str,
    *,
    data: str | Path | None = None,
    epochs: int | None = None,
    settings: Mapping[str, Any] | None = None,
    roots: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
    force: bool = False,
    progress: bool = False,
    say: Say | None = None,
    run_tags: Mapping[str, str] | None = None,
) -> Path:
    """Local weights file of ``variant`` after ``stage``, pretraining it if needed.

    Args:
        variant: The backbone variant.
        stage: ``imagenet`` or ``coco`` (``coco`` ensures the ``imagenet`` weights first).
        data: Folder of a real dataset for this stage (default: the synthetic proxy).
        epochs: Epochs for this stage (default: settings, else the recipe).
        settings: A study's ``pretrain`` section (see :func:`stage_settings`).
        roots: Dataset name -> folder.
        tracking_uri: MLflow store (default: SQLite in the capstudy home).
        force: Train a new version even when a matching one exists.
        progress: Show a progress bar while training.
        say: Where to tell the user what happens (default: nowhere).
        run_tags: Extra tags of the pretraining runs this makes (a launch's Ray task).

    Returns:
        Path of the weights file (format of :mod:`capstudy.engine.weights`).
    """
    uri = tracking_uri or paths.default_tracking_uri()
    ref = _ensure(
        variant, stage, data, epochs, settings, roots, uri, force, progress, say, run_tags
    )
    return registry.download(ref, uri, rerun_command(variant, stage))


def _ensure(
    variant, stage, data, epochs, settings, roots, uri, force, progress, say, run_tags=None
) -> WeightsRef:
    say = say or (lambda _msg: None)
    name = registered_name(variant, stage)
    parent_path = None
    if stage == "coco":
        if (
            find_weights(variant, "imagenet", settings=settings, roots=roots, tracking_uri=uri)
            is None
        ):
            say(f"{name}: the imagenet weights it starts from are missing; making them first")
        parent = _ensure(
            variant, "imagenet", None, None, settings, roots, uri, False, progress, say, run_tags
        )
        parent_path = registry.download(parent, uri, rerun_command(variant, "imagenet"))
    with named_lock(name):
        st, config, fingerprint, parent, digest = _identity(
            variant, stage, settings, data, epochs, roots, uri
        )
        found = None if force else registry.find_version(name, digest, uri)
        if found is not None:
            say(f"{name}: reusing version {found.version} (run {found.run_id})")
            registry.set_current(found, uri)
            return found
        say(f"{name}: pretraining on {st.domain} for {st.epochs} epoch(s) at {st.image_size} px")
        stage_args = (config, fingerprint, digest, parent, parent_path, uri, progress, run_tags)
        return _run_stage(variant, *stage_args)


def _run_stage(variant, config, fingerprint, digest, parent, parent_path, uri, progress, run_tags):
    """Train one stage as an MLflow run and register its weights; the run always ends."""
    from capstudy.engine import run_trial, save_weights

    stage = "imagenet" if config.task == "classification" else "coco"
    name = registered_name(variant, stage)
    tags = tracking.trial_tags(config, kind=keys.KIND_PRETRAIN, data_fingerprint=fingerprint)
    tags.update({keys.T_STAGE: stage, keys.T_REGISTERED_MODEL: name, **(run_tags or {})})
    run_id = tracking.create_run(keys.PRETRAIN_EXPERIMENT, f"{variant.label} {stage}", tags, uri)
    try:
        tracking.log_params(
            run_id, {**tracking.trial_params(config, variant.label), "stage": stage}, uri
        )
        result = run_trial(
            config,
            lambda m, _dir: tracking.log_metrics(run_id, m, int(m[keys.M_EPOCH]), uri),
            init_path=parent_path,
            progress=progress,
        )
        if result.diverged:
            raise CapstudyError(
                f"{name}: pretraining diverged (non-finite loss) at lr={config.lr}; lower the "
                "stage's lr and run it again (no weights were registered)"
            )
        recipe_json = json.dumps(
            {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_HASH}, sort_keys=True
        )
        meta = _meta(variant, config, stage, result, fingerprint, run_id)
        with tempfile.TemporaryDirectory(prefix="capstudy-weights-") as tmp:
            path = save_weights(result.model, Path(tmp) / registry.WEIGHTS_FILE, meta)
            sha256 = registry.log_weights(run_id, path, uri)
        version_tags = {
            keys.T_STAGE: stage,
            keys.T_SETTINGS: digest,
            keys.T_RECIPE: recipe_json,
            keys.T_EPOCHS: str(config.epochs),
            keys.T_RUN: run_id,
            keys.T_DATA_FINGERPRINT: fingerprint,
        }
        if parent is not None:
            version_tags.update(
                {
                    keys.T_PARENT_NAME: parent.name,
                    keys.T_PARENT_VERSION: parent.version,
                    keys.T_PARENT_RUN_ID: parent.run_id,
                }
            )
        ref = registry.register_weights(run_id, name, version_tags, uri, sha256=sha256)
        tracking.set_tags(run_id, {keys.T_MODEL_VERSION: ref.version}, uri)
    except BaseException as exc:
        tracking.end_run(run_id, tracking.status_for(exc), uri)
        raise
    tracking.end_run(run_id, "FINISHED", uri)
    return ref


def _meta(variant, config, stage, result, fingerprint, run_id) -> dict[str, Any]:
    from capstudy.data import class_names

    return {
        "family": variant.family,
        "phi": variant.phi,
        "preset": variant.preset,
        "width": variant.scale.width,
        "depth": variant.scale.depth,
        "label": variant.label,
        "stage": stage,
        "dataset": config.train_domain,
        "class_names": list(class_names(config.train_domain, dict(config.data_roots))),
        "image_size": config.image_size,
        "head_width": config.head_width,
        "head_convs": config.head_convs,
        "epochs": config.epochs,
        "data_fingerprint": fingerprint,
        "run_id": run_id,
        "final_metrics": {k: float(v) for k, v in result.metrics.items()},
    }


def pretrain_command(variant: Variant, stage: str) -> str:
    """The CLI command that makes ``variant``'s weights after ``stage``."""
    if variant.preset == "free":
        capacity = f"--width {variant.scale.width:g} --depth {variant.scale.depth:g}"
    else:
        capacity = f"--phi {variant.phi}"
        if variant.preset != DEFAULT_PRESET:
            capacity += f" --preset {variant.preset}"
    return f"capstudy pretrain {stage} --family {variant.family} {capacity}"


def rerun_command(variant: Variant, stage: str) -> str:
    """The command that pretrains ``variant``'s ``stage`` again as a new version."""
    return f"{pretrain_command(variant, stage)} --force"


def init_weights(
    config: TrialConfig, *, tracking_uri: str | None = None, auto_pretrain: bool = False
) -> tuple[Path | None, WeightsRef | None]:
    """Local weights file of a trial's ``init`` and the registry version it came from.

    See :func:`resolve_init`; the version (None for ``random`` and paths) is for lineage.
    """
    if config.init == "random":
        return None, None
    if config.init not in INIT_CHOICES:
        path = Path(config.init).expanduser()
        if not path.is_file():
            raise CapstudyError(
                f"init={config.init!r} is not a file; init must be one of {INIT_CHOICES} or "
                "the path of a weights file or trial checkpoint"
            )
        return path, None
    from capstudy.engine import variant_of

    uri = tracking_uri or paths.default_tracking_uri()
    variant, stage = variant_of(config), STAGES_FOR_INIT[config.init][-1]
    name = registered_name(variant, stage)
    ref = registry.current_version(name, uri)
    if ref is None:
        if not auto_pretrain:
            raise CapstudyError(
                f"init={config.init}: no pretrained weights {name!r} in the MLflow registry at "
                f"{uri}. Make them with: {pretrain_command(variant, stage)}"
            )
        ref = _ensure(variant, stage, None, None, None, None, uri, False, False, None)
    return registry.download(ref, uri, rerun_command(variant, stage)), ref


def resolve_init(
    config: TrialConfig, *, tracking_uri: str | None = None, auto_pretrain: bool = False
) -> Path | None:
    """The weights file a trial's ``init`` names (None for ``random``).

    ``imagenet`` / ``imagenet_coco`` resolve to the registry's ``current`` version of the
    variant's ``imagenet`` / ``coco`` weights, downloaded once per machine; a path must exist.

    Raises:
        CapstudyError: A missing path, or weights not registered yet (the message names the
            ``capstudy pretrain`` command making them), unless ``auto_pretrain``.
    """
    return init_weights(config, tracking_uri=tracking_uri, auto_pretrain=auto_pretrain)[0]
