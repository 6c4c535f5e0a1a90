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

Integrity. :func:`log_weights` returns the sha256 of the file it uploads and
:func:`register_weights` records it on the version (tag ``capstudy.weights_sha256``);
:func:`download` checks every copy against it before handing it out, so weights replaced in
the artifact store after registration (a shared folder or bucket that the tracking server's
authentication does not guard) are never loaded: :class:`~capstudy.errors.UntrustedWeights`
names the version and the fix.

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
from capstudy.errors import UntrustedWeights
from capstudy.scaling import DEFAULT_PRESET
from capstudy.util import file_sha256
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
        if keys.T_WEIGHTS_SHA256 not in mv.tags:
            continue  # unverifiable (see download): never reused, so it is pretrained again
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
    run_id: str,
    name: str,
    tags: dict[str, str],
    tracking_uri: str | None = None,
    *,
    sha256: str,
) -> WeightsRef:
    """Register the run's ``weights/`` artifact as a new version of ``name`` (made current).

    ``sha256`` is the weights file's digest as :func:`log_weights` returned it; it is recorded
    on the version and every download is checked against it.
    """
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256={sha256!r} is not a hex sha256 digest (see log_weights)")
    client = tracking.client(tracking_uri)
    try:
        client.create_registered_model(
            name, description="capstudy pretrained backbone weights (capstudy.engine.weights)"
        )
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "ALREADY_EXISTS" not in str(exc):
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_DIR}"
    tags = {**tags, keys.T_WEIGHTS_SHA256: sha256}
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
    ref = _ref(mv)
    set_current(ref, tracking_uri)
    return ref


def log_weights(run_id: str, path: Path, tracking_uri: str | None = None) -> str:
    """Upload a weights file into the run's ``weights/`` artifact folder; returns its sha256
    (for :func:`register_weights`)."""
    digest = file_sha256(path)
    tracking.client(tracking_uri).log_artifact(run_id, str(path), ARTIFACT_DIR)
    return digest


def recorded_sha256(ref: WeightsRef, rerun: str | None = None) -> str:
    """The sha256 registered with ``ref``.

    Raises:
        UntrustedWeights: None was recorded (a version registered before capstudy recorded
            them, or its tag removed). Such a file is refused, not hashed now and trusted:
            a digest taken today would bless whatever the artifact store holds today, which
            is the replaced file this check exists to catch. Pretraining again costs one
            stage, and a launch does it by itself, since :func:`find_version` never reuses
            such a version.
    """
    digest = ref.tags.get(keys.T_WEIGHTS_SHA256)
    if not digest:
        raise UntrustedWeights(
            f"registered weights {ref.name} version {ref.version} have no recorded sha256 "
            "(registered by an older capstudy), so they are not loaded: `capstudy launch "
            "--retry-failed STUDY` pretrains them anew (a launch never reuses such a version; "
            f"outside a study: {_command(rerun)}; tag {keys.T_WEIGHTS_SHA256})"
        )
    return digest


def _command(rerun: str | None) -> str:
    return f"`{rerun}`" if rerun else "`capstudy pretrain STAGE ... --force`"


def verify(ref: WeightsRef, path: Path, rerun: str | None = None) -> None:
    """Check a copy of ``ref``'s weights file against the sha256 registered with it.

    Args:
        ref: The registered version (its tags hold the digest).
        path: The local copy.
        rerun: The ``capstudy pretrain`` command that makes these weights again, for the
            error (default: a generic one).

    Raises:
        UntrustedWeights: No digest was recorded, or the file differs from it (replaced or
            damaged in the artifact store after registration).
    """
    expected = recorded_sha256(ref, rerun)
    got = file_sha256(path)
    if got != expected:
        # One line, the model, version and fix first: a failed trial's error tag keeps the
        # first 300 characters (capstudy.status.causes).
        raise UntrustedWeights(
            f"registered weights {ref.name} version {ref.version} fail their sha256 check; "
            "not loaded: delete this version from the registry, then `capstudy launch "
            "--retry-failed STUDY` pretrains it anew (the file was replaced or damaged after "
            f"registration; outside a study: {_command(rerun)}; got sha256 {got[:16]}…, "
            f"registered {expected[:16]}… in tag {keys.T_WEIGHTS_SHA256}; file "
            f"{ref.source}/{WEIGHTS_FILE}, {path.stat().st_size} bytes)"
        )


def download(ref: WeightsRef, tracking_uri: str | None = None, rerun: str | None = None) -> Path:
    """Local path of a version's weights file, downloaded once per machine and checked.

    Files are cached under ``<home>/weights/<name>/v<version>-<run id>/`` (a version's files
    never change; the producing run's id keeps two tracking stores, whose version numbers both
    start at 1, from sharing a cache entry); the download goes to a temporary folder renamed
    into place, so concurrent readers never see half a file. Every call checks the file
    against the sha256 registered with the version (:func:`verify`): a download that fails
    never enters the cache, and a cached copy that no longer matches is fetched again.

    Raises:
        UntrustedWeights: See :func:`verify` (``rerun`` is for its message).
    """
    recorded_sha256(ref, rerun)  # refuse an unverifiable version before fetching anything
    folder = paths.home() / "weights" / ref.name / f"v{ref.version}-{ref.run_id}"
    target = folder / WEIGHTS_FILE
    if target.is_file():
        try:
            verify(ref, target, rerun)
            return target
        except UntrustedWeights:
            pass  # this machine's copy changed since it was checked: fetch it again
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
        verify(ref, src / WEIGHTS_FILE, rerun)
        try:
            src.rename(folder)
        except OSError:
            if not folder.is_dir():  # not a cached copy, nor another process winning the race
                raise
            os.replace(src / WEIGHTS_FILE, target)  # the checked file, atomically
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
