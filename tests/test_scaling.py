import math

import pytest

from capstudy.scaling import PRESETS, compound_scale, free_scale, round_resolution
from capstudy.variants import FAMILIES, all_variants, get_family, make_variant


def test_ultrasmall_is_default_and_fixed_resolution():
    s = compound_scale(-4)
    assert math.isclose(s.width, 1.46**-4)
    assert math.isclose(s.depth, 1.45**-4)
    assert s.resolution == 224


def test_efficientnet_preset_shrinks_resolution_in_multiples_of_32():
    res = [compound_scale(phi, "efficientnet").resolution for phi in range(0, -8, -1)]
    assert res[0] == 224
    assert all(r % 32 == 0 for r in res)
    assert res == sorted(res, reverse=True)
    assert res[-1] == round_resolution(224 * 1.15**-7)


def test_positive_phi_and_unknown_preset_rejected():
    with pytest.raises(ValueError, match="scales down"):
        compound_scale(1)
    with pytest.raises(ValueError, match="unknown scaling preset"):
        compound_scale(0, "bogus")


def test_free_scale_validates():
    assert free_scale(0.5, 0.25, 100).resolution == 96
    with pytest.raises(ValueError, match="width"):
        free_scale(1.5, 0.5)


def test_labels_are_paper_labels():
    eff = get_family("efficientnet_b0")
    mob = get_family("mobilenetv3_small")
    assert [eff.label(p) for p in eff.phis] == ["B0"] + [f"B-{i}" for i in range(1, 8)]
    assert [mob.label(p) for p in mob.phis] == [f"S-{i}" for i in range(0, 7)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_registered_variant(preset):
    assert len(all_variants(preset)) == 8 + 7 + 7


def test_phi_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        make_variant("mobilenetv3_small", -7)
    with pytest.raises(KeyError, match="known families"):
        make_variant("resnet50", 0)
    assert set(FAMILIES) == {"efficientnet_b0", "mobilenetv3_small", "mobilenetv4_conv_small"}
