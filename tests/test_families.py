"""The family registry: golden parameter counts, timm equality, the features contract."""

import json

import pytest
import timm

from capstudy.backbones import build_trunk, check_features, trunk_channels, trunk_strides
from capstudy.capacity import count_macs, count_params
from capstudy.families import PARAMS_FILE
from capstudy.scaling import PRESETS
from capstudy.variants import FAMILIES, all_variants, make_variant

GOLDEN = json.loads(PARAMS_FILE.read_text())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_golden_parameter_counts(preset):
    """A timm upgrade (or a builder change) that shifts the capacity axis fails here."""
    measured = {f"{v.family}:{v.phi}": count_params(build_trunk(v)) for v in all_variants(preset)}
    assert measured == GOLDEN[preset]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_params_strictly_decrease_within_family(preset):
    assert {k.split(":")[0] for k in GOLDEN[preset]} == set(FAMILIES)
    for family in FAMILIES:
        counts = [GOLDEN[preset][k] for k in GOLDEN[preset] if k.startswith(family + ":")]
        phis = [int(k.split(":")[1]) for k in GOLDEN[preset] if k.startswith(family + ":")]
        ordered = [c for _, c in sorted(zip(phis, counts), reverse=True)]
        assert all(a > b for a, b in zip(ordered, ordered[1:])), (family, ordered)


def test_smallest_efficientnet_under_30k():
    assert count_params(build_trunk(make_variant("efficientnet_b0", -7))) < 30_000


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_phi_zero_is_exactly_timm(family):
    ours = build_trunk(make_variant(family, 0))
    ref = timm.create_model(FAMILIES[family].timm_name, features_only=True, pretrained=False)
    assert count_params(ours) == count_params(ref)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_shapes == ref_shapes


@pytest.mark.parametrize(
    ("family", "phi"),
    [
        ("efficientnet_b0", -7),
        ("mobilenetv3_small", -6),
        ("efficientnet_b0", -3),
        ("mobilenetv4_conv_small", -6),
    ],
)
def test_features_contract(family, phi):
    """Declared channels and strides are what a forward pass produces."""
    trunk = build_trunk(make_variant(family, phi))
    size = 64
    shapes = check_features(trunk, size)
    assert [c for c, _, _ in shapes] == trunk_channels(trunk)
    assert [size // h for _, h, _ in shapes] == trunk_strides(trunk) == [2, 4, 8, 16, 32]


def test_macs_scale_with_resolution():
    trunk = build_trunk(make_variant("efficientnet_b0", -5))
    small, large = count_macs(trunk, 64), count_macs(trunk, 128)
    # Convolutions are linear in pixel count: 4x the pixels, ~4x the MACs (SE's pooled
    # linear layers do not grow, hence the tolerance).
    assert 3.5 < large / small <= 4.0


def test_registering_a_clashing_family_is_refused():
    from capstudy.families import Family, register

    eff = FAMILIES["efficientnet_b0"]
    with pytest.raises(ValueError, match="clashes"):
        register(Family("other", "x", (0,), eff.label_prefix, 0, eff.build, eff.divisor))
    assert "other" not in FAMILIES
