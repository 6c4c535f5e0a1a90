"""The held-out validation subset: carved from train, disjoint from eval, fixed, cached right."""

from __future__ import annotations

from pathlib import PurePath

import numpy as np
import pytest
from data_fixtures import voc, write_flir_aligned, write_llvip

from capstudy.data import dataset_fingerprint, get_split
from capstudy.data.carve import sample_id, val_count, val_positions
from capstudy.errors import CapstudyError


def _ids(split) -> set[str]:
    return set(split.sample_ids())


def test_val_is_carved_from_train_and_disjoint_from_every_eval_image(tmp_path):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip", n_train=20, n_val=6))}
    for modality in ("rgb", "ir"):
        full = get_split(f"llvip/{modality}", "train", 32, roots=roots)
        train = get_split(f"llvip/{modality}", "train", 32, roots=roots, val_fraction=0.2)
        val = get_split(f"llvip/{modality}", "val", 32, roots=roots, val_fraction=0.2)
        test = get_split(f"llvip/{modality}", "eval", 32, roots=roots)
        assert len(val) == 4 and len(train) == 16 and len(test) == 6
        assert _ids(val) | _ids(train) == _ids(full) and not _ids(val) & _ids(train)
        assert not _ids(val) & _ids(test)  # selection never sees a reported image
        assert all(i.startswith("train/") for i in _ids(val))
    # Paired modalities hold out the same scenes.
    rgb = get_split("llvip/rgb", "val", 32, roots=roots, val_fraction=0.2)
    assert rgb.sample_ids() == val.sample_ids()


def test_synthetic_val_is_disjoint_from_its_eval_split(monkeypatch):
    monkeypatch.setenv("CAPSTUDY_SYNTH_SCALE", "0.05")  # 20 train, 5 eval images
    val = get_split("synth_a/ir", "val", 64, val_fraction=0.25)
    test = get_split("synth_a/ir", "eval", 64)
    assert not _ids(val) & _ids(test)
    # Also by content: no val image is pixel-equal to an eval image.
    flat_eval = {bytes(np.asarray(img)) for img in test.images}
    assert not any(bytes(np.asarray(img)) in flat_eval for img in val.images)


def test_carve_is_fixed_and_independent_of_order():
    ids = [f"train/{i:06d}" for i in range(100)]
    chosen = {ids[i] for i in val_positions(ids, 0.1)}
    assert len(chosen) == 10
    shuffled = list(reversed(ids))
    assert {shuffled[i] for i in val_positions(shuffled, 0.1)} == chosen
    # Growing the dataset keeps almost every choice (only rank changes move an image).
    more = ids + [f"train/{i:06d}" for i in range(100, 110)]
    assert len(chosen & {more[i] for i in val_positions(more, 0.1)}) >= 8


def test_sample_ids_are_modality_independent():
    rgb = sample_id(PurePath("/d/JPEGImages/FLIR_00001_RGB.jpg"))
    ir = sample_id(PurePath("/d/JPEGImages/FLIR_00001_PreviewData.jpeg"))
    assert rgb == ir == "JPEGImages/FLIR_00001"
    assert sample_id(PurePath("/d/visible/train/010001.jpg")) == sample_id(
        PurePath("/d/infrared/train/010001.jpg")
    )


def test_val_count_limits():
    assert val_count(10, 0.1) == 1 and val_count(3, 0.5) == 2 and val_count(2, 0.01) == 1
    with pytest.raises(CapstudyError, match="val_fraction"):
        val_count(1, 0.1)
    with pytest.raises(CapstudyError, match=r"\(0, 0.5\]"):
        val_count(100, 0.7)


def test_cache_keys_the_carve(tmp_path):
    root = write_flir_aligned(tmp_path / "flir", n_train=10, n_val=2)
    roots = {"flir": str(root)}
    a = get_split("flir/ir", "val", 32, roots=roots, val_fraction=0.2)
    b = get_split("flir/ir", "val", 32, roots=roots, val_fraction=0.3)
    t = get_split("flir/ir", "train", 32, roots=roots, val_fraction=0.2)
    assert len({a.path, b.path, t.path}) == 3 and (len(a), len(b), len(t)) == (2, 3, 8)
    fp = dataset_fingerprint("flir/ir", "val", roots, 0.2)
    assert fp == dataset_fingerprint("flir/ir", "val", roots, 0.2)
    assert fp != dataset_fingerprint("flir/ir", "val", roots, 0.3)
    assert fp != dataset_fingerprint("flir/ir", "train", roots, 0.2)
    # Relabelling a training image changes the key: no stale entry is reused.
    voc(root / "Annotations" / "FLIR_00001_PreviewData.xml", [("person", 2, 2, 9, 9)])
    again = get_split("flir/ir", "val", 32, roots=roots, val_fraction=0.2)
    assert again.path != a.path
    assert dataset_fingerprint("flir/ir", "val", roots, 0.2) != fp


def test_val_needs_a_fraction(tmp_path):
    roots = {"llvip": str(write_llvip(tmp_path / "llvip"))}
    with pytest.raises(CapstudyError, match="val_fraction"):
        get_split("llvip/ir", "val", 32, roots=roots)
    with pytest.raises(CapstudyError, match="split must be one of"):
        get_split("llvip/ir", "test", 32, roots=roots)
