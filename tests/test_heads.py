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


@pytest.mark.parametrize(
    ("family", "phi"), [("efficientnet_b0", 0), ("efficientnet_b0", -5), ("mobilenetv3_small", 0)]
)
def test_classifier_keeps_timms_conv_head(family, phi):
    """Trunk + conv_head hold exactly the parameters of timm's own model without its logits."""
    import timm
    from timm.models.efficientnet import _gen_efficientnet

    from capstudy.backbones import channel_divisor

    variant = make_variant(family, phi)
    clf = build_classifier(variant, num_classes=10)
    if family == "mobilenetv3_small":
        assert phi == 0  # S-0 is exactly timm's mobilenetv3_small_100
        ref = timm.create_model("mobilenetv3_small_100", pretrained=False)
    else:
        w, d = variant.scale.width, variant.scale.depth
        ref = _gen_efficientnet(
            "efficientnet_b0",
            channel_multiplier=w,
            depth_multiplier=d,
            channel_divisor=channel_divisor(variant),
        )
    ours = count_params(clf) - count_params(clf.fc)
    assert ours == count_params(ref) - count_params(ref.get_classifier())
    assert clf.fc.in_features == ref.get_classifier().in_features
    logits = clf.eval()(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 10)


def test_conv_head_does_not_reach_the_detector():
    """Transfer is unchanged: a detector's trunk is the classifier's trunk, nothing more."""
    variant = make_variant("efficientnet_b0", -3)
    clf = build_classifier(variant, num_classes=5)
    det = build_detector(variant, num_classes=3, image_size=64)
    assert trunk_of(clf).state_dict().keys() == trunk_of(det).state_dict().keys()
    assert not any("conv_head" in k for k in det.state_dict())
