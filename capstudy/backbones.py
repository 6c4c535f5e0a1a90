"""Scaled backbone trunks: the registered family's timm builder, plus feature helpers.

The timm private builders (``_gen_efficientnet``, ``_create_mnv3`` and the arch-def helpers)
are each used in exactly one family module of :mod:`capstudy.families`; timm is pinned to a
minor release and the parameter counts they produce are golden-file tested, so a timm change
that shifts the capacity axis fails loudly in one place.
"""

from __future__ import annotations

import torch
from torch import nn

from capstudy.variants import Variant, get_family

# Feature levels (indices into the trunk's 5 stride levels 2, 4, 8, 16, 32) used by heads.
DETECTION_LEVELS = (2, 3, 4)  # strides 8, 16, 32 feed the FPN


def channel_divisor(variant: Variant) -> int:
    """The channel rounding divisor of a variant (its family's rule; see the family module)."""
    return get_family(variant.family).divisor(variant.scale.width)


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
    return family.build(
        variant.scale.width,
        variant.scale.depth,
        channel_divisor(variant),
        features_only=True,
        out_indices=out_indices,
        pretrained=False,
    )


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
