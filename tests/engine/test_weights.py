"""Initialization weights: file format, what transfers, shape-mismatch errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from capstudy.engine.weights import load_init, read_weights, save_weights
from capstudy.errors import CapstudyError
from capstudy.heads import build_classifier, build_detector, trunk_of
from capstudy.variants import make_variant


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_imagenet_weights_move_only_the_trunk(tmp_path: Path):
    v = make_variant("efficientnet_b0", -7)
    torch.manual_seed(0)
    classifier = build_classifier(v, 10)
    path = save_weights(classifier, tmp_path / "w.pt", {"stage": "imagenet", "phi": -7})
    state, meta = read_weights(path)
    assert meta["model"] == "classifier" and meta["stage"] == "imagenet"
    torch.manual_seed(1)
    detector = build_detector(v, 3, 64)
    fpn_before = {k: t.clone() for k, t in detector.backbone.fpn.state_dict().items()}
    load_init(detector, path)
    assert _same(trunk_of(detector), trunk_of(classifier))
    assert all(torch.equal(fpn_before[k], t) for k, t in detector.backbone.fpn.state_dict().items())


def test_coco_weights_move_all_but_the_class_logits(tmp_path: Path):
    v = make_variant("mobilenetv3_small", -6)
    torch.manual_seed(0)
    source = build_detector(v, 7, 64)
    path = save_weights(source, tmp_path / "coco.pt", {"stage": "coco"})
    torch.manual_seed(1)
    target = build_detector(v, 3, 64)
    logits_before = target.head.classification_head.cls_logits.weight.clone()
    meta = load_init(target, path)
    assert meta["transferred"] > 0
    assert _same(target.backbone, source.backbone)
    assert _same(target.head.regression_head, source.head.regression_head)
    assert _same(target.head.classification_head.conv, source.head.classification_head.conv)
    assert torch.equal(target.head.classification_head.cls_logits.weight, logits_before)


def test_weights_of_another_phi_name_the_file_and_tensors(tmp_path: Path):
    path = save_weights(
        build_classifier(make_variant("efficientnet_b0", -4), 10),
        tmp_path / "b-4.pt",
        {"family": "efficientnet_b0", "phi": -4, "stage": "imagenet"},
    )
    detector = build_detector(make_variant("efficientnet_b0", -5), 3, 64)
    with pytest.raises(CapstudyError) as info:
        load_init(detector, path)
    message = str(info.value)
    assert str(path) in message and "phi=-4" in message
    assert "body.conv_stem.weight" in message or "body.blocks." in message
    assert "file (" in message and "vs model (" in message


def test_missing_or_foreign_files_are_clear_errors(tmp_path: Path):
    detector = build_detector(make_variant("efficientnet_b0", -7), 3, 64)
    with pytest.raises(CapstudyError, match="does not exist"):
        load_init(detector, tmp_path / "nope.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CapstudyError, match="neither"):
        load_init(detector, tmp_path / "foreign.pt")
