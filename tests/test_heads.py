import pytest
import torch

from capstudy.capacity import count_params
from capstudy.heads import build_classifier, build_detector, norm_groups, trunk_of
from capstudy.variants import make_variant


def test_norm_groups_adapt_below_32_channels():
    assert norm_groups(256) == 32
    assert norm_groups(16) == 4
    assert norm_groups(8) == 2
    assert norm_groups(12) == 3


@pytest.mark.parametrize(("family", "phi"), [("efficientnet_b0", -7), ("mobilenetv3_small", -6)])
@pytest.mark.parametrize("width", [8, 16])
def test_detector_train_losses_and_eval_outputs(family, phi, width):
    torch.manual_seed(0)
    det = build_detector(make_variant(family, phi), num_classes=3, image_size=64, head_width=width)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.tensor([[10.0, 10.0, 30.0, 60.0]]), "labels": torch.tensor([3])},
    ]
    det.train()
    losses = det(images, targets)
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    det.eval()
    with torch.no_grad():
        out = det(images)
    assert len(out) == 2
    for o in out:
        assert set(o) == {"boxes", "scores", "labels"}
        assert o["boxes"].shape[-1] == 4
        if len(o["labels"]):
            assert int(o["labels"].max()) <= 3


def test_head_is_not_ten_times_the_smallest_backbone():
    det = build_detector(make_variant("efficientnet_b0", -7), num_classes=3, image_size=128)
    backbone = count_params(trunk_of(det))
    assert count_params(det) - backbone < 2 * backbone


def test_classifier_forward_and_trunk():
    clf = build_classifier(make_variant("mobilenetv3_small", -4), num_classes=10)
    logits = clf(torch.rand(3, 3, 64, 64))
    assert logits.shape == (3, 10)
    assert trunk_of(clf) is clf.body
