"""The MLflow Model Registry side of pretraining: names, lookup, registration, download.

Every registry call of capstudy lives here (run life cycle and logging helpers live in
:mod:`capstudy.tracking`), so an MLflow rename touches these two files.

Names. One registered model per (variant, stage), named by :func:`registered_name`:
``capstudy-efficientnet_b0-ultrasmall-phi-5-imagenet`` for the default preset, and
``capstudy-<family>-w<width>-d<depth>-<stage>`` for any other preset or free triple
(weights depend on width and depth only; each stage trains at its own image size).

Versions. Each pretraining run registers one version from its ``weights/`` artifact, tagged
with the stage, the settings hash it was made with (data fingerprint + recipe + epochs), the
recipe JSON, the producing run id and, for ``coco``, the ``imagenet`` version it started
from. The alias ``current`` points at the version the last pretraining request made or
chose; trials resolve that alias (see :func:`capstudy.pretrain.resolve_init`).

Works on a SQLite store with a local artifact root and on an ``http`` tracking server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from capstudy import keys, paths, tracking
from capstudy.scaling import DEFAULT_PRESET
from capstudy.variants import Variant

ALIAS = "current"
ARTIFACT_DIR = "weights"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class WeightsRef:
    """One registered weights version.

    Attributes:
        name: Registered model name.
        version: Version number (as MLflow's string).
        run_id: The pretraining run that made it.
        source: Artifact URI of its ``weights/`` folder.
        tags: Version tags.
    """

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]


def registered_name(variant: Variant, stage: str) -> str:
    """Registered-model name of ``variant``'s weights after ``stage`` (see module doc)."""
    if variant.preset == DEFAULT_PRESET:
        capacity = f"{DEFAULT_PRESET}-phi{variant.phi}"
    else:
        capacity = f"w{variant.scale.width:.4g}-d{variant.scale.depth:.4g}"
    return f"capstudy-{variant.family}-{capacity}-{stage}"


def _ref(mv) -> WeightsRef:
    return WeightsRef(mv.name, str(mv.version), mv.run_id or "", mv.source, dict(mv.tags))


def _versions(name: str, tracking_uri: str | None) -> list:
    try:
        found = tracking.client(tracking_uri).search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    ready = [mv for mv in found if mv.status == "READY"]
    return sorted(ready, key=lambda mv: int(mv.version), reverse=True)


def find_version(
    name: str, settings_hash: str | None = None, tracking_uri: str | None = None
) -> WeightsRef | None:
    """Newest READY version of ``name`` made with ``settings_hash`` (any, when None)."""
    for mv in _versions(name, tracking_uri):
        if settings_hash is None or mv.tags.get(keys.T_SETTINGS) == settings_hash:
            return _ref(mv)
    return None


def current_version(name: str, tracking_uri: str | None = None) -> WeightsRef | None:
    """The version aliased ``current``, else the newest READY one, else None."""
    client = tracking.client(tracking_uri)
    try:
        return _ref(client.get_model_version_by_alias(name, ALIAS))
    except MlflowException:
        return find_version(name, None, tracking_uri)


def set_current(ref: WeightsRef, tracking_uri: str | None = None) -> None:
    """Point the ``current`` alias of ``ref.name`` at ``ref.version``."""
    tracking.client(tracking_uri).set_registered_model_alias(ref.name, ALIAS, ref.version)


def register_weights(
    run_id: str, name: str, tags: dict[str, str], tracking_uri: str | None = None
) -> WeightsRef:
    """Register the run's ``weights/`` artifact as a new version of ``name`` (made current)."""
    client = tracking.client(tracking_uri)
    try:
        client.create_registered_model(
            name, description="capstudy pretrained backbone weights (capstudy.engine.weights)"
        )
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "ALREADY_EXISTS" not in str(exc):
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_DIR}"
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
    ref = _ref(mv)
    set_current(ref, tracking_uri)
    return ref


def log_weights(run_id: str, path: Path, tracking_uri: str | None = None) -> None:
    """Upload a weights file into the run's ``weights/`` artifact folder."""
    tracking.client(tracking_uri).log_artifact(run_id, str(path), ARTIFACT_DIR)


def download(ref: WeightsRef, tracking_uri: str | None = None) -> Path:
    """Local path of a version's weights file, downloaded once per machine.

    Files are cached under ``<home>/weights/<name>/v<version>-<run id>/`` (a version's files
    never change; the producing run's id keeps two tracking stores, whose version numbers both
    start at 1, from sharing a cache entry); the download goes to a temporary folder renamed
    into place, so concurrent readers never see half a file.
    """
    folder = paths.home() / "weights" / ref.name / f"v{ref.version}-{ref.run_id}"
    target = folder / WEIGHTS_FILE
    if target.is_file():
        return target
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".v{ref.version}-", dir=folder.parent))
    try:
        tracking.configure(tracking_uri)
        # MLflow's download bar would interleave with capstudy's own progress output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=ref.source, dst_path=str(tmp))
        )
        src = local if local.is_dir() else local.parent
        if not (src / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{ref.name} v{ref.version}: no {WEIGHTS_FILE} in {ref.source}")
        try:
            src.rename(folder)
        except OSError:
            if not target.is_file():  # not another process winning the race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
