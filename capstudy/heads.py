"""Heads on a features-only trunk: a light FPN + FCOS detector, and a classifier.

Why FCOS (torchvision ``detection/fcos.py``): it is anchor-free (one location per pixel per
level, nothing to re-tune when objects or input sizes change across datasets), its head is
a pair of small conv towers shared across levels (so the head's size does not grow with the
number of classes or anchors the way RetinaNet's does), and it uses GroupNorm, which works
with the small batches of many packed trials. SSDLite would be lighter still but ties box
priors to one input size, and its extra layers scale with the trunk's last width.

Head width is a study parameter (``head_width``) and may go below 32 channels: torchvision
hard-codes ``GroupNorm(32, C)``, so the head is rebuilt with ``GroupNorm(groups, C)`` where
``groups`` is the largest divisor of C that is at most 32 and leaves >= 4 channels per group
(fewer channels per group make GroupNorm statistics noisy; 16 channels -> 4 groups).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import (
    FCOS,
    FCOSClassificationHead,
    FCOSHead,
    FCOSRegressionHead,
)
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from capstudy.backbones import DETECTION_LEVELS, build_trunk, trunk_channels
from capstudy.recipes import FINETUNE_DETECTION
from capstudy.variants import Variant

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def norm_groups(channels: int, max_groups: int = 32, min_per_group: int = 4) -> int:
    """GroupNorm group count for ``channels`` (see the module docstring)."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0 and channels // groups >= min(min_per_group, channels):
            return groups
    return 1


class TrunkWithFPN(nn.Module):
    """Trunk -> light FPN over strides 8/16/32 plus a max-pooled stride-64 level.

    The extra level is a parameter-free max pool (torchvision's ``LastLevelMaxPool``) rather
    than RetinaNet's P6/P7 convolutions, which would cost two more full-width 3x3 convs.
    """

    def __init__(self, trunk: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.body = trunk
        self.fpn = FeaturePyramidNetwork(
            trunk_channels(trunk), out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def build_fcos_head(width: int, num_classes: int, num_convs: int) -> FCOSHead:
    """torchvision's FCOS head with adaptive GroupNorm (works below 32 channels)."""
    head = FCOSHead(width, num_anchors=1, num_classes=num_classes, num_convs=0)
    norm = partial(nn.GroupNorm, norm_groups(width))
    head.classification_head = FCOSClassificationHead(
        width, 1, num_classes, num_convs=num_convs, norm_layer=norm
    )
    head.regression_head = FCOSRegressionHead(width, 1, num_convs=num_convs, norm_layer=norm)
    return head


def build_detector(
    variant: Variant,
    num_classes: int,
    image_size: int,
    head_width: int = FINETUNE_DETECTION["head_width"],
    head_convs: int = FINETUNE_DETECTION["head_convs"],
    **fcos_kwargs,
) -> FCOS:
    """FCOS detector on a scaled trunk.

    Args:
        variant: The backbone variant.
        num_classes: Object classes K, labelled 1..K (the model gets K + 1 outputs slots as
            torchvision reserves 0 for background).
        image_size: Input size; torchvision's transform is pinned to it (otherwise it
            resizes every image to 800/1333).
        head_width: FPN and head channels.
        head_convs: Conv layers in each head tower.
        **fcos_kwargs: Passed to ``torchvision.models.detection.FCOS`` (score_thresh, ...).
    """
    trunk = build_trunk(variant, out_indices=DETECTION_LEVELS)
    neck = TrunkWithFPN(trunk, head_width)
    # One anchor per location, sized as the level's stride (torchvision's FCOS convention).
    strides = (8, 16, 32, 64)
    anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    fcos_kwargs.setdefault("score_thresh", 0.05)  # low: COCO mAP integrates over scores
    # 200 candidates per level (torchvision: 1000) before NMS: scenes hold a few dozen objects
    # at most, and an untrained model's flood of low scores made CPU NMS half of eval time.
    fcos_kwargs.setdefault("topk_candidates", 200)
    return FCOS(
        neck,
        num_classes=num_classes + 1,
        min_size=image_size,
        max_size=image_size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        anchor_generator=anchors,
        head=build_fcos_head(head_width, num_classes + 1, head_convs),
        **fcos_kwargs,
    )


# timm's final 1x1 conv ("conv_head") widths: EfficientNet-B0 1280, scaled with the width
# multiplier and its channel divisor like every other layer (timm ``_gen_efficientnet``:
# ``num_features=round_chs_fn(1280)``); MobileNetV3-Small 1024 at every width (timm's
# ``_gen_mobilenet_v3`` passes a fixed ``num_features``).
CONV_HEAD_WIDTH = {"efficientnet_b0": 1280, "mobilenetv3_small": 1024}


def conv_head_width(variant: Variant) -> int:
    """Output channels of the classifier's ``conv_head`` for a variant (as timm builds it)."""
    from timm.models._efficientnet_builder import round_channels

    from capstudy.backbones import channel_divisor

    base = CONV_HEAD_WIDTH[variant.family]
    if variant.family == "efficientnet_b0":
        return round_channels(base, variant.scale.width, channel_divisor(variant))
    return base


class ConvHead(nn.Module):
    """timm's classifier head between the trunk and the logits, per family.

    EfficientNet: 1x1 conv (no bias) -> BatchNorm -> SiLU, then global average pool.
    MobileNetV3: global average pool first, then 1x1 conv (with bias) -> hard-swish (the
    "efficient last stage" of the MobileNetV3 paper). Returns pooled features (B, C).
    """

    def __init__(self, family: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool_first = family == "mobilenetv3_small"
        if self.pool_first:
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)
            self.norm: nn.Module = nn.Identity()
            self.act: nn.Module = nn.Hardswish(inplace=True)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.norm = nn.BatchNorm2d(out_channels)
            self.act = nn.SiLU(inplace=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            feats = feats.mean(dim=(2, 3), keepdim=True)
        x = self.act(self.norm(self.conv(feats)))
        return x.mean(dim=(2, 3))


class Classifier(nn.Module):
    """Trunk -> conv_head (timm's final 1x1 conv) -> pool -> dropout -> linear.

    The trunk is exactly the detector's trunk (``trunk_of`` returns it, and only it transfers
    into a detector), so keeping ``conv_head`` here makes ImageNet-stage pretraining train the
    same network timm and the reference code train, without changing what a detector gets.
    Inputs are float images in [0, 1]; normalisation lives in the model so every data path
    (training, evaluation, export) feeds it the same way.
    """

    def __init__(self, variant: Variant, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = build_trunk(variant, out_indices=(4,))
        features = trunk_channels(self.body)[-1]
        width = conv_head_width(variant)
        self.conv_head = ConvHead(variant.family, features, width)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        feats = self.body(x)[-1]
        return self.fc(self.dropout(self.conv_head(feats)))


def build_classifier(variant: Variant, num_classes: int) -> Classifier:
    """Classification model on a scaled trunk (the DomainNet study and ImageNet pretraining)."""
    return Classifier(variant, num_classes)


def trunk_of(model: nn.Module) -> nn.Module:
    """The backbone trunk inside a detector or classifier (what pretraining transfers)."""
    if isinstance(model, FCOS):
        return model.backbone.body
    if isinstance(model, Classifier):
        return model.body
    raise TypeError(f"not a capstudy model: {type(model).__name__}")
