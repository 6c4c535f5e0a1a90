"""EfficientNet-B0 scaled down to B-1 … B-7, built with timm's ``_gen_efficientnet``.

Channel rounding: timm rounds every scaled channel count to a multiple of 8 with a floor of 8.
EfficientNet keeps divisor 8 at every step: B0 → B-7 then spans 3.6 M → 17.4 k backbone
parameters, strictly decreasing, which is the capacity axis of arXiv 2508.02927.
"""

from __future__ import annotations

from capstudy.families.registry import Family, register


def _divisor(width: float) -> int:
    return 8


def build(width: float, depth: float, divisor: int, **kwargs):
    """timm's own EfficientNet generator with width, depth and divisor set."""
    from timm.models.efficientnet import _gen_efficientnet

    return _gen_efficientnet(
        "efficientnet_b0",
        channel_multiplier=width,
        depth_multiplier=depth,
        channel_divisor=divisor,
        **kwargs,
    )


FAMILY = register(
    Family(
        name="efficientnet_b0",
        timm_name="efficientnet_b0",
        phis=tuple(range(0, -8, -1)),
        label_prefix="B",
        min_phi=-7,
        build=build,
        divisor=_divisor,
        base_label="B0",
    )
)
