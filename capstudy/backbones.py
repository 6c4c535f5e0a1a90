"""Scaled backbone trunks, built with timm's own generators.

This is the only module that touches timm's private builders (``_gen_efficientnet``,
``_create_mnv3`` and the arch-def helpers): timm is pinned to a minor release and the
parameter counts they produce are golden-file tested, so a timm change that shifts the
capacity axis fails loudly in one place.

Channel rounding. timm rounds every scaled channel count to a multiple of a divisor (8 by
default) with a floor of the divisor itself:

* EfficientNet-B0 keeps divisor 8 for every step: B0 -> B-7 then goes 3.6 M -> 17.4 k
  backbone parameters, strictly decreasing, which is the axis of arXiv 2508.02927.
* MobileNetV3-Small with divisor 8 collapses at the bottom: S-5 and S-6 differ by 3.6 %
  (16.2 k vs 15.7 k), since nearly every layer is pinned at the floor of 8 channels. Below
  width 0.4 (S-3 and smaller) capstudy therefore rounds to multiples of 4 (floor 4), which
  keeps each step a real reduction (33.8 k, 19.7 k, 12.8 k, 9.0 k). S-0 ... S-2 keep 8, so
  S-0 is exactly timm's ``mobilenetv3_small_100``. timm's ``_gen_mobilenet_v3`` takes no
  divisor, so the MobileNetV3-Small arch def is restated here (variants as data) and built
  with timm's ``_create_mnv3``.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from capstudy.variants import Variant, get_family

# Width below which MobileNetV3-Small rounds channels to multiples of 4 (see module doc).
MOBILENET_SMALL_DIVISOR_SWITCH = 0.4

# timm's mobilenetv3_small_100 arch def (timm 1.0.x, mobilenetv3.py, _gen_mobilenet_v3).
_MOBILENETV3_SMALL_ARCH = (
    ("ds_r1_k3_s2_e1_c16_se0.25_nre",),
    ("ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"),
    ("ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"),
    ("ir_r2_k5_s1_e3_c48_se0.25",),
    ("ir_r3_k5_s2_e6_c96_se0.25",),
    ("cn_r1_k1_s1_c576",),
)

# Feature levels (indices into the trunk's 5 stride levels 2, 4, 8, 16, 32) used by heads.
DETECTION_LEVELS = (2, 3, 4)  # strides 8, 16, 32 feed the FPN


def channel_divisor(variant: Variant) -> int:
    """The channel rounding divisor of a variant (see the module docstring for why)."""
    if (
        variant.family == "mobilenetv3_small"
        and variant.scale.width < MOBILENET_SMALL_DIVISOR_SWITCH
    ):
        return 4
    return 8


def build_trunk(variant: Variant, out_indices: tuple[int, ...] = (0, 1, 2, 3, 4)) -> nn.Module:
    """Features-only trunk of a variant (timm ``FeatureListNet``), randomly initialised.

    Args:
        variant: The scaled variant.
        out_indices: Which of the 5 stride levels (2, 4, 8, 16, 32) to return.

    Returns:
        A module mapping images ``(B, 3, H, W)`` to a list of feature maps, with
        ``feature_info.channels()`` and ``feature_info.reduction()`` describing them.
    """
    family = get_family(variant.family)
    width, depth = variant.scale.width, variant.scale.depth
    divisor = channel_divisor(variant)
    kwargs = dict(features_only=True, out_indices=out_indices, pretrained=False)
    if family.name == "efficientnet_b0":
        from timm.models.efficientnet import _gen_efficientnet

        return _gen_efficientnet(
            family.timm_name,
            channel_multiplier=width,
            depth_multiplier=depth,
            channel_divisor=divisor,
            **kwargs,
        )
    if family.name == "mobilenetv3_small":
        return _build_mobilenetv3_small(family.timm_name, width, depth, divisor, **kwargs)
    raise KeyError(f"no builder for family {family.name!r}")


def _build_mobilenetv3_small(
    timm_name: str, width: float, depth: float, divisor: int, **kwargs
) -> nn.Module:
    """timm's ``_gen_mobilenet_v3`` for the small model, with a channel divisor argument."""
    from timm.models._efficientnet_blocks import SqueezeExcite
    from timm.models._efficientnet_builder import (
        decode_arch_def,
        resolve_act_layer,
        round_channels,
    )
    from timm.models.mobilenetv3 import _create_mnv3

    round_fn = partial(round_channels, divisor=divisor)
    model_kwargs = dict(
        block_args=decode_arch_def(
            [list(s) for s in _MOBILENETV3_SMALL_ARCH], depth_multiplier=depth
        ),
        num_features=1024,
        stem_size=16,
        fix_stem=width < 0.75,  # as timm: keep the 16-channel stem for narrow models
        round_chs_fn=partial(round_fn, multiplier=width),
        norm_layer=partial(nn.BatchNorm2d),
        act_layer=resolve_act_layer({}, "hard_swish"),
        se_layer=partial(
            SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=nn.ReLU, rd_round_fn=round_fn
        ),
        **kwargs,
    )
    pretrained = model_kwargs.pop("pretrained", False)
    return _create_mnv3(timm_name, pretrained, **model_kwargs)


def trunk_channels(trunk: nn.Module) -> list[int]:
    """Channels of each returned feature level."""
    return list(trunk.feature_info.channels())


def trunk_strides(trunk: nn.Module) -> list[int]:
    """Stride (reduction) of each returned feature level."""
    return list(trunk.feature_info.reduction())


@torch.no_grad()
def check_features(trunk: nn.Module, size: int = 64) -> list[tuple[int, int, int]]:
    """Run a dummy batch and return ``(channels, height, width)`` per level (for tests)."""
    was_training = trunk.training
    trunk.eval()
    feats = trunk(torch.zeros(1, 3, size, size))
    trunk.train(was_training)
    return [tuple(f.shape[1:]) for f in feats]
