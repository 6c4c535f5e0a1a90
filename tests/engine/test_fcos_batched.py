"""The batched FCOS loss and post-processing equal torchvision's per-image code.

Head outputs are random (a trained head is not needed to compare two implementations of
the same function), anchors come from the detector's own anchor generator, and the ground
truth mixes random boxes, images without boxes, boxes of equal area (the smallest-box tie)
and boxes whose sides sit exactly on the level and center-sampling bounds.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from capstudy.engine import fcos_batched
from capstudy.engine.fcos_batched import (
    batched_fcos_loss,
    batched_postprocess,
    grouped_nms,
    unpad,
)
from capstudy.heads import build_detector
from capstudy.variants import make_variant

SIZE = 128
CLASSES = 3  # labels 1..3; the model has 4 class slots (0: background)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_detector(make_variant("efficientnet_b0", -7), CLASSES, SIZE).eval()


def _anchors(model, n: int):
    sizes = [SIZE // s for s in (8, 16, 32, 64)]
    features = [torch.zeros(n, 1, s, s) for s in sizes]
    images = ImageList(torch.zeros(n, 3, SIZE, SIZE), [(SIZE, SIZE)] * n)
    return model.anchor_generator(images, features), [s * s for s in sizes]


def _head_outputs(n: int, anchors: int, gen: torch.Generator, scale: float = 2.0) -> dict:
    return {
        "cls_logits": (torch.randn(n, anchors, CLASSES + 1, generator=gen) * scale - 2),
        "bbox_regression": torch.rand(n, anchors, 4, generator=gen) * 3,
        "bbox_ctrness": torch.randn(n, anchors, 1, generator=gen),
    }


def _random_targets(n: int, gen: torch.Generator, integer: bool) -> list[dict]:
    targets = []
    for i in range(n):
        k = 0 if i == 1 else int(torch.randint(1, 9, (1,), generator=gen))
        xy = torch.rand(k, 2, generator=gen) * SIZE * 0.8
        wh = 4 + torch.rand(k, 2, generator=gen) * SIZE * 0.6
        boxes = torch.cat([xy, (xy + wh).clamp(max=SIZE)], dim=1)
        boxes = boxes.round() if integer else boxes
        labels = torch.randint(1, CLASSES + 1, (k,), generator=gen)
        targets.append({"boxes": boxes, "labels": labels})
    return targets


def _boundary_targets() -> list[dict]:
    """Boxes whose side distances from anchor points equal 4 or 8 strides (level bounds) and
    whose centers sit 1.5 strides from anchor points (center-sampling bound), plus two boxes
    of equal area overlapping (the smallest-box tie goes to the first)."""
    boxes = [
        [0.0, 0.0, 64.0, 64.0],  # from the anchor at 32: side 32 = 4 strides of 8
        [16.0, 16.0, 80.0, 80.0],  # from 48: side 32; from 16 + 1.5 * 16 = 40
        [36.0, 36.0, 100.0, 100.0],  # center 68 = 64 + 0.5 * 8: center sampling 12 = 1.5 * 8
        [0.0, 0.0, 128.0, 128.0],  # from 64: side 64 = 8 strides of 8 = 4 strides of 16
        [8.0, 8.0, 40.0, 40.0],  # equal area to the next, overlapping
        [16.0, 16.0, 48.0, 48.0],
    ]
    labels = [1, 2, 3, 1, 2, 3]
    return [
        {"boxes": torch.tensor(boxes), "labels": torch.tensor(labels)},
        {"boxes": torch.tensor(boxes[3:]), "labels": torch.tensor(labels[3:])},
    ]


def _losses_agree(model, targets: list[dict], gen: torch.Generator) -> None:
    anchors, per_level = _anchors(model, len(targets))
    outputs = _head_outputs(len(targets), sum(per_level), gen)
    mine_in = {k: v.clone().requires_grad_() for k, v in outputs.items()}
    ref_in = {k: v.clone().requires_grad_() for k, v in outputs.items()}
    mine = batched_fcos_loss(model, targets, mine_in, anchors, per_level)
    ref = model.compute_loss(targets, ref_in, anchors, per_level)
    assert mine.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(mine[name], ref[name], rtol=1e-5, atol=1e-5, msg=name)
    sum(mine.values()).backward()
    sum(ref.values()).backward()
    for name in outputs:
        torch.testing.assert_close(mine_in[name].grad, ref_in[name].grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("integer", [False, True])
def test_batched_loss_equals_torchvision_on_random_batches(model, seed, integer):
    gen = torch.Generator().manual_seed(seed)
    _losses_agree(model, _random_targets(5, gen, integer), gen)


def test_batched_loss_equals_torchvision_on_bounds_and_ties(model):
    gen = torch.Generator().manual_seed(7)
    targets = _boundary_targets()
    _losses_agree(model, targets, gen)
    anchors, per_level = _anchors(model, len(targets))
    outputs = _head_outputs(len(targets), sum(per_level), gen)
    loss = batched_fcos_loss(model, targets, outputs, anchors, per_level)
    assert loss["bbox_regression"] > 0  # the batch has foreground anchors


def test_batched_loss_of_a_batch_without_boxes(model):
    gen = torch.Generator().manual_seed(3)
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}
    _losses_agree(model, [empty, empty], gen)


def test_padding_to_more_slots_changes_nothing(model):
    gen = torch.Generator().manual_seed(5)
    targets = _random_targets(3, gen, integer=False)
    anchors, per_level = _anchors(model, 3)
    outputs = _head_outputs(3, sum(per_level), gen)
    tight = batched_fcos_loss(model, targets, outputs, anchors, per_level)
    padded = batched_fcos_loss(model, targets, outputs, anchors, per_level, slots=40)
    for name in tight:
        torch.testing.assert_close(tight[name], padded[name], rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("scale", [2.0, 6.0])
@pytest.mark.parametrize("one_pass", [False, True], ids=["nms per group", "one nms (GPU way)"])
def test_batched_postprocess_equals_torchvision(model, seed, scale, one_pass, monkeypatch):
    real = fcos_batched.grouped_nms
    monkeypatch.setattr(fcos_batched, "grouped_nms", lambda *args: real(*args, one_pass=one_pass))
    gen = torch.Generator().manual_seed(seed)
    n = 4
    anchors, per_level = _anchors(model, n)
    outputs = _head_outputs(n, sum(per_level), gen, scale)
    outputs["bbox_regression"] = torch.rand(n, sum(per_level), 4, generator=gen) * 4
    split = {k: list(v.split(per_level, dim=1)) for k, v in outputs.items()}
    split_anchors = [list(a.split(per_level)) for a in anchors]
    ref = model.postprocess_detections(split, split_anchors, [(SIZE, SIZE)] * n)
    mine = unpad(batched_postprocess(model, outputs, anchors, per_level, (SIZE, SIZE)))
    assert sum(len(r["scores"]) for r in ref) > 0
    for got, want in zip(mine, ref, strict=True):
        assert len(got["scores"]) == len(want["scores"])
        torch.testing.assert_close(got["scores"], want["scores"], rtol=0, atol=0)
        torch.testing.assert_close(got["boxes"], want["boxes"], rtol=1e-6, atol=1e-5)
        assert torch.equal(got["labels"], want["labels"])


def test_batched_postprocess_with_nothing_above_the_threshold(model):
    anchors, per_level = _anchors(model, 2)
    outputs = _head_outputs(2, sum(per_level), torch.Generator().manual_seed(0))
    outputs["cls_logits"] = torch.full_like(outputs["cls_logits"], -30.0)
    detections = unpad(batched_postprocess(model, outputs, anchors, per_level, (SIZE, SIZE)))
    assert [len(d["scores"]) for d in detections] == [0, 0]


def test_both_ways_of_grouped_nms_keep_the_same_boxes():
    """One suppression with each group in its own region (the GPU way) and one suppression
    per group (the CPU way): the same boxes kept, in the same order (best first)."""
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(600, 2, generator=gen) * 60  # crowded: many overlaps within a group
    boxes = torch.cat([xy, xy + 8 + torch.rand(600, 2, generator=gen) * 30], dim=1)
    scores = torch.rand(600, generator=gen)
    group = torch.randint(0, 12, (600,), generator=gen)
    one = grouped_nms(boxes, scores, group, 0.5, one_pass=True)
    per_group = grouped_nms(boxes, scores, group, 0.5, one_pass=False)
    assert torch.equal(one, per_group)
    assert 12 < len(one) < 600  # suppression happened, and within groups only
    plain = grouped_nms(boxes, scores, torch.zeros_like(group), 0.5, one_pass=False)
    assert len(plain) < len(one)
