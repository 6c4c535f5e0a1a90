"""MobileNetV3-Small 1.0 scaled down to S-1 … S-6, built with timm's ``_create_mnv3``.

Channel rounding: with timm's divisor 8 MobileNetV3-Small collapses at the bottom — S-5 and
S-6 differ by 3.6 % (16.2 k vs 15.7 k) because nearly every layer sits at the floor of 8
channels. Below width 0.4 (S-3 and smaller) capstudy therefore rounds to multiples of 4
(floor 4), which keeps each step a real reduction (33.8 k, 19.7 k, 12.8 k, 9.0 k). S-0 … S-2
keep 8, so S-0 is exactly timm's ``mobilenetv3_small_100``. timm's ``_gen_mobilenet_v3`` takes
no divisor, so its arch def is restated here (variants as data) and built with timm's own
``_create_mnv3``; a test holds phi 0 equal to timm's model.
"""

from __future__ import annotations

from functools import partial

from capstudy.families.registry import Family, register

# Width below which channels round to multiples of 4 (see module doc).
DIVISOR_SWITCH = 0.4

# timm's mobilenetv3_small_100 arch def (timm 1.0.x, mobilenetv3.py, _gen_mobilenet_v3).
ARCH = (
    ("ds_r1_k3_s2_e1_c16_se0.25_nre",),
    ("ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"),
    ("ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"),
    ("ir_r2_k5_s1_e3_c48_se0.25",),
    ("ir_r3_k5_s2_e6_c96_se0.25",),
    ("cn_r1_k1_s1_c576",),
)


def _divisor(width: float) -> int:
    return 4 if width < DIVISOR_SWITCH else 8


def build(width: float, depth: float, divisor: int, **kwargs):
    """timm's ``_gen_mobilenet_v3`` for the small model, with a channel divisor argument."""
    from timm.models._efficientnet_blocks import SqueezeExcite
    from timm.models._efficientnet_builder import (
        decode_arch_def,
        resolve_act_layer,
        round_channels,
    )
    from timm.models.mobilenetv3 import _create_mnv3
    from torch import nn

    round_fn = partial(round_channels, divisor=divisor)
    model_kwargs = dict(
        block_args=decode_arch_def([list(s) for s in ARCH], depth_multiplier=depth),
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
    return _create_mnv3("mobilenetv3_small_100", pretrained, **model_kwargs)


FAMILY = register(
    Family(
        name="mobilenetv3_small",
        timm_name="mobilenetv3_small_100",
        phis=tuple(range(0, -7, -1)),
        label_prefix="S",
        min_phi=-6,
        build=build,
        divisor=_divisor,
    )
)
