"""MobileNetV4-Conv-Small scaled down to M-1 … M-6, built with timm's ``_create_mnv3``.

The third family, added as one module to show the registry at work (docs/contributing.md,
"Adding a family"). timm's ``_gen_mobilenet_v4`` takes a width multiplier but neither a depth
multiplier nor a channel divisor, so its ``mobilenetv4_conv_small`` arch def is restated here
(variants as data) and built with the same ``_create_mnv3`` arguments timm uses; a test holds
phi 0 equal to timm's ``mobilenetv4_conv_small`` (parameter count and state-dict shapes).

Scaling uses the same presets as the other families (width 1.46**phi, depth 1.45**phi with
``ultrasmall``). Depth scales the repeated IR blocks (``r4``, ``r2``); single blocks stay single
(timm's ``ceil`` rounding). Channel rounding keeps timm's divisor 8 at every step: unlike
MobileNetV3-Small, M-0 → M-6 stay well apart at 8 (1.26 M, 589 k, 282 k, 126 k, 78 k, 48 k,
30 k backbone parameters; each step at least 1.5× smaller), so nothing needs the finer divisor.
"""

from __future__ import annotations

from functools import partial

from capstudy.families.registry import Family, register

# timm 1.0.x mobilenetv3.py, _gen_mobilenet_v4, the 'small' conv (non-hybrid) arch def.
ARCH = (
    ("cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"),
    ("cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"),
    ("uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96"),
    (
        "uir_r1_a3_k3_s2_e6_c128",
        "uir_r1_a5_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e3_c128",
        "uir_r2_a0_k3_s1_e4_c128",
    ),
    ("cn_r1_k1_s1_c960",),
)


def _divisor(width: float) -> int:
    return 8


def build(width: float, depth: float, divisor: int, **kwargs):
    """timm's ``_gen_mobilenet_v4`` (conv small) with depth and divisor arguments."""
    from timm.models._efficientnet_builder import (
        decode_arch_def,
        resolve_act_layer,
        round_channels,
    )
    from timm.models.mobilenetv3 import _create_mnv3
    from torch import nn

    model_kwargs = dict(
        block_args=decode_arch_def([list(s) for s in ARCH], depth_multiplier=depth),
        head_bias=False,
        head_norm=True,
        num_features=1280,
        stem_size=32,
        fix_stem=width < 1.0,  # as timm
        round_chs_fn=partial(round_channels, multiplier=width, divisor=divisor),
        norm_layer=partial(nn.BatchNorm2d),
        act_layer=resolve_act_layer({}, "relu"),
        layer_scale_init_value=None,
        **kwargs,
    )
    pretrained = model_kwargs.pop("pretrained", False)
    return _create_mnv3("mobilenetv4_conv_small", pretrained, **model_kwargs)


FAMILY = register(
    Family(
        name="mobilenetv4_conv_small",
        timm_name="mobilenetv4_conv_small",
        phis=tuple(range(0, -7, -1)),
        label_prefix="M",
        min_phi=-6,
        build=build,
        divisor=_divisor,
    )
)
