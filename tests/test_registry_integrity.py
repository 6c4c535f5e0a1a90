"""Registered weights carry their sha256; a copy that differs is never handed out (SQLite store).

The weights files here are plain bytes: the check runs before anything is loaded. One store
for the module (creating one takes seconds); each test registers under a name of its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import pytest

from capstudy import keys, paths, registry, tracking
from capstudy.config import TrialConfig
from capstudy.errors import UntrustedWeights
from capstudy.pretrain import init_weights
from capstudy.registry import registered_name
from capstudy.variants import make_variant

VARIANT = make_variant("efficientnet_b0", -7)
NAME = registered_name(VARIANT, "imagenet")
TAGS = {keys.T_STAGE: "imagenet", keys.T_SETTINGS: "s0"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def _register(store, tmp_path, name: str) -> registry.WeightsRef:
    run_id = tracking.create_run(keys.PRETRAIN_EXPERIMENT, "stage", {}, store)
    local = tmp_path / "upload" / registry.WEIGHTS_FILE
    local.parent.mkdir(exist_ok=True)
    local.write_bytes(b"weights v1")
    sha256 = registry.log_weights(run_id, local, store)
    tracking.end_run(run_id, "FINISHED", store)
    return registry.register_weights(run_id, name, TAGS, store, sha256=sha256)


def _stored_file(ref: registry.WeightsRef) -> Path:
    """The artifact in the store's artifact root (where a replaced file would be)."""
    return Path(urlparse(ref.source).path) / registry.WEIGHTS_FILE


def test_the_sha256_is_recorded_and_a_good_copy_is_handed_out(store, tmp_path):
    ref = _register(store, tmp_path, "good")
    assert ref.tags[keys.T_WEIGHTS_SHA256] == hashlib.sha256(b"weights v1").hexdigest()
    path = registry.download(ref, store)
    assert path.read_bytes() == b"weights v1"
    assert registry.download(ref, store) == path  # the cached copy, checked again


def test_a_replaced_artifact_is_refused_naming_the_version_and_the_fix(store, tmp_path):
    ref = _register(store, tmp_path, "replaced")
    _stored_file(ref).write_bytes(b"someone else's weights")
    with pytest.raises(UntrustedWeights) as err:
        registry.download(ref, store, "capstudy pretrain imagenet --phi -7 --force")
    message = str(err.value)
    assert "registered weights replaced version 1 fail their sha256 check" in message
    assert "delete this version from the registry" in message
    assert "`capstudy launch --retry-failed STUDY` pretrains it anew" in message
    assert "`capstudy pretrain imagenet --phi -7 --force`" in message
    assert "\n" not in message  # one line: it becomes the trial's error tag
    # Nothing unchecked entered the cache.
    assert not list((paths.home() / "weights").rglob(registry.WEIGHTS_FILE))


def test_a_damaged_cached_copy_is_fetched_again(store, tmp_path):
    ref = _register(store, tmp_path, "cached")
    path = registry.download(ref, store)
    path.write_bytes(b"flipped bits")
    assert registry.download(ref, store).read_bytes() == b"weights v1"
    # Both the cache and the store changed: refused.
    path.write_bytes(b"flipped bits")
    _stored_file(ref).write_bytes(b"flipped bits")
    with pytest.raises(UntrustedWeights, match="fail their sha256 check"):
        registry.download(ref, store)


def test_a_version_without_a_sha256_is_refused_and_never_reused(store, tmp_path):
    ref = _register(store, tmp_path, "old")
    client = tracking.client(store)
    client.delete_model_version_tag("old", ref.version, keys.T_WEIGHTS_SHA256)
    old = registry.current_version("old", store)
    assert keys.T_WEIGHTS_SHA256 not in old.tags
    with pytest.raises(UntrustedWeights, match="old version 1 have no recorded sha256"):
        registry.download(old, store)
    assert registry.find_version("old", "s0", store) is None  # so a launch pretrains again


def test_a_trial_resolving_its_init_gets_the_error_with_the_pretrain_command(store, tmp_path):
    ref = _register(store, tmp_path, NAME)
    _stored_file(ref).write_bytes(b"someone else's weights")
    config = TrialConfig.from_dict({"family": "efficientnet_b0", "phi": -7, "init": "imagenet"})
    with pytest.raises(UntrustedWeights) as err:
        init_weights(config, tracking_uri=store)
    assert "capstudy pretrain imagenet --family efficientnet_b0 --phi -7 --force" in str(err.value)


def test_register_weights_needs_a_sha256_digest(store):
    run_id = tracking.create_run(keys.PRETRAIN_EXPERIMENT, "stage", {}, store)
    with pytest.raises(ValueError, match="not a hex sha256"):
        registry.register_weights(run_id, NAME, TAGS, store, sha256="abc")
