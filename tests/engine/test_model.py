"""The split FCOS forward: autocast on the network, float32 losses and decoding.

A CUDA machine runs it under bfloat16/float16 autocast with channels-last tensors; CPU
autocast with bfloat16 exercises the same code path here.
"""

from __future__ import annotations

import torch

from capstudy.engine.device import Precision, precision_for
from capstudy.engine.model import classification_loss, classify, detect, detection_loss
from capstudy.heads import build_classifier, build_detector
from capstudy.variants import make_variant

TARGETS = [
    {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([2])},
    {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)},  # background
]


def _mixed() -> Precision:
    return Precision(
        torch.device("cpu"),
        torch.bfloat16,
        torch.amp.GradScaler("cpu", enabled=False),
        channels_last=True,
    )


def test_detection_under_autocast_keeps_losses_and_boxes_float32():
    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -7), 3, 64)
    model.to(memory_format=torch.channels_last).train()
    images = torch.rand(2, 3, 64, 64)
    loss = detection_loss(model, images, TARGETS, _mixed())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    model.eval()
    out = detect(model, images, _mixed())
    assert len(out) == 2 and all(o["boxes"].dtype == torch.float32 for o in out)


def test_plain_and_mixed_detection_losses_agree_roughly():
    torch.manual_seed(0)
    model = build_detector(make_variant("mobilenetv3_small", -6), 3, 64).train()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        plain = detection_loss(model, images, TARGETS, precision_for(torch.device("cpu"), False))
        mixed = detection_loss(model, images, TARGETS, _mixed())
    assert abs(plain.item() - mixed.item()) < 0.05 * plain.item()


def test_classification_under_autocast():
    torch.manual_seed(0)
    model = build_classifier(make_variant("efficientnet_b0", -7), 5).train()
    images, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = classification_loss(model, images, labels, _mixed(), label_smoothing=0.1)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert classify(model.eval(), images, _mixed()).shape == (4,)


def test_skipping_the_identity_resize_changes_nothing_but_the_work():
    """The in-batch normalisation equals torchvision's transform at the trial's own size."""
    from capstudy.engine.model import _prepare

    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -7), 3, 64).train()
    images = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    batch, image_list, _ = _prepare(model, images, TARGETS)
    reference, _ = model.transform(list(images), [dict(t) for t in TARGETS])
    assert torch.allclose(batch, reference.tensors, atol=1e-5)
    assert image_list.image_sizes == reference.image_sizes
    assert batch.is_contiguous(memory_format=torch.channels_last)  # the loader's layout kept
    model.eval()
    fast = detect(model, images, precision_for(torch.device("cpu"), False))
    assert len(fast) == 2 and fast[0]["boxes"].shape[1] == 4
    # Another size still goes through torchvision's transform, which resizes it to 64.
    _, odd_list, _ = _prepare(model, torch.rand(2, 3, 72, 72), None)
    assert odd_list.image_sizes == [(64, 64), (64, 64)]
