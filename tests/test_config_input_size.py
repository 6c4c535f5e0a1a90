"""`resolution` reaches training: the input size a trial trains at (TrialConfig.input_size)."""

import pytest

from capstudy.config import TrialConfig
from capstudy.scaling import compound_scale


def test_ultrasmall_trains_at_image_size():
    for phi in (0, -4, -7):
        config = TrialConfig.from_dict({"phi": phi, "image_size": 128})
        assert config.input_size == 128


@pytest.mark.parametrize("phi", [0, -2, -4, -7])
def test_efficientnet_preset_scales_the_input_like_the_paper(phi):
    config = TrialConfig.from_dict({"phi": phi, "preset": "efficientnet", "image_size": 224})
    assert config.input_size == compound_scale(phi, "efficientnet").resolution
    # At another study size the resolution ratio carries over, rounded to the stride 32.
    double = TrialConfig.from_dict({"phi": phi, "preset": "efficientnet", "image_size": 448})
    assert double.input_size == 2 * config.input_size


def test_free_resolution_scales_the_input_and_changes_the_size_trained_at():
    base = {"width": 0.5, "depth": 0.5, "image_size": 256}
    assert TrialConfig.from_dict(base).input_size == 256
    assert TrialConfig.from_dict({**base, "resolution": 160}).input_size == 192  # 256*160/224
    assert TrialConfig.from_dict({**base, "resolution": 448}).input_size == 512


def test_a_word_where_a_number_belongs_is_named_plainly():
    import pytest

    from capstudy.config import ConfigError, TrialConfig

    with pytest.raises(ConfigError, match=r"'epochs' has bad value 'two': expected an integer$"):
        TrialConfig.from_dict({"epochs": "two"}, source="s.yaml")
    with pytest.raises(ConfigError, match=r"'lr' has bad value 'fast': expected a number$"):
        TrialConfig.from_dict({"lr": "fast"}, source="s.yaml")
    assert TrialConfig.from_dict({"lr": "1e-3"}).lr == 1e-3  # YAML 1.1 leaves 1e-3 a string
