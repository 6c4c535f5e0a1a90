"""Pretrain -> register -> resolve -> load, on a temporary SQLite store (tiny settings)."""

from __future__ import annotations

import pytest
import torch
from enginefixtures import small_data  # noqa: F401  (fixtures)
from mlflow.tracking import MlflowClient

from capstudy import keys, registry
from capstudy.config import TrialConfig
from capstudy.engine import load_init, read_weights
from capstudy.errors import CapstudyError
from capstudy.heads import build_detector, trunk_of
from capstudy.pretrain import ensure_weights, find_weights, resolve_init
from capstudy.registry import registered_name
from capstudy.variants import make_variant

# One epoch on 32 images at 32/64 px: seconds per stage.
TINY = {
    "epochs_imagenet": 1,
    "epochs_coco": 1,
    "image_size_imagenet": 32,
    "image_size_coco": 64,
    "max_train_images": 32,
}
VARIANT = make_variant("efficientnet_b0", -7)


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _runs(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(keys.PRETRAIN_EXPERIMENT)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_round_trip_registers_lineage_reuses_and_loads(store):
    path = ensure_weights(VARIANT, "coco", settings=TINY, tracking_uri=store)
    runs = _runs(store)
    assert sorted(r.data.tags[keys.T_STAGE] for r in runs) == ["coco", "imagenet"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    imagenet = find_weights(VARIANT, "imagenet", settings=TINY, tracking_uri=store)
    coco = find_weights(VARIANT, "coco", settings=TINY, tracking_uri=store)
    assert imagenet.name == "capstudy-efficientnet_b0-ultrasmall-phi-7-imagenet"
    assert coco.tags[keys.T_PARENT_NAME] == imagenet.name
    assert coco.tags[keys.T_PARENT_RUN_ID] == imagenet.run_id
    for tag in (keys.T_DATA_FINGERPRINT, keys.T_RECIPE, keys.T_EPOCHS, keys.T_RUN):
        assert coco.tags[tag]
    _, meta = read_weights(path)
    assert meta["stage"] == "coco" and meta["phi"] == -7

    # Asking again reuses both versions: no new run, same file.
    assert ensure_weights(VARIANT, "coco", settings=TINY, tracking_uri=store) == path
    assert len(_runs(store)) == 2

    config = TrialConfig.from_dict(
        {"family": "efficientnet_b0", "phi": -7, "init": "imagenet_coco", "image_size": 64}
    )
    resolved = resolve_init(config, tracking_uri=store)
    assert resolved == path
    detector = build_detector(VARIANT, 3, 64)
    load_init(detector, resolved)
    state, _ = read_weights(resolved)
    trunk = trunk_of(detector).state_dict()
    assert all(torch.equal(state[f"backbone.body.{k}"], v) for k, v in trunk.items())


def test_changed_settings_make_a_new_version(store):
    ensure_weights(VARIANT, "imagenet", settings=TINY, tracking_uri=store)
    ensure_weights(
        VARIANT, "imagenet", settings={**TINY, "max_train_images": 16}, tracking_uri=store
    )
    name = registered_name(VARIANT, "imagenet")
    assert registry.current_version(name, store).version == "2"
    ensure_weights(VARIANT, "imagenet", settings=TINY, tracking_uri=store)  # reuse v1
    assert registry.current_version(name, store).version == "1"


def test_missing_weights_name_the_command_that_makes_them(store):
    config = TrialConfig.from_dict({"family": "mobilenetv3_small", "phi": -5, "init": "imagenet"})
    with pytest.raises(
        CapstudyError, match="capstudy pretrain imagenet --family mobilenetv3_small --phi -5"
    ):
        resolve_init(config, tracking_uri=store)
    with pytest.raises(CapstudyError, match="not a file"):
        resolve_init(config.replace(init="/nonexistent/w.pt"), tracking_uri=store)
    assert resolve_init(config.replace(init="random"), tracking_uri=store) is None


def test_a_failing_stage_leaves_its_run_failed(store, monkeypatch):
    import capstudy.engine

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(capstudy.engine, "run_trial", broken)
    with pytest.raises(RuntimeError, match="boom"):
        ensure_weights(VARIANT, "imagenet", settings=TINY, tracking_uri=store)
    assert [r.info.status for r in _runs(store)] == ["FAILED"]
    assert find_weights(VARIANT, "imagenet", settings=TINY, tracking_uri=store) is None
