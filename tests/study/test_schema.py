"""Study-file schema: every shipped search space, and errors that name key path, file, line."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from capstudy.config import TrialConfig
from capstudy.errors import CapstudyError
from capstudy.study import StudyError, StudyWarning, available_studies, load_study
from capstudy.study.cells import expand_cells

SHIPPED = {
    # name: (cells, trials), counted by hand in each file's header comment
    "smoke": (2 * 4 * 3 * 1 * 2, 48),
    "full_grid": ((8 + 7) * 3 * 2 * 8, 720 * 4),
    "domainnet": ((4 + 4) * 2 * 1 * 3, 48 * 2),
    "free_scale": (3 * 3 * 2 * 2 * 1 * 2, 72 * 2),
}

BASE = textwrap.dedent(
    """\
    study: {name: t, task: detection, metric: val/map50, mode: max}
    fixed:
      epochs: 4
      image_size: 128
    space:
      family: {grid_search: [efficientnet_b0, mobilenetv3_small]}
      phi: {grid_search: [0, -3]}
      init: {grid_search: [random, imagenet]}
      train: {grid_search: [synth_a/rgb]}
      seed: {grid_search: [0, 1]}
      lr: {loguniform: [1e-4, 1.0e-2]}
    evaluate: [synth_a/rgb, synth_a/ir]
    tune: {samples_per_cell: 3, search: random, asha: {grace: 1, reduction: 2, scope: cell}}
    resources: {cpu: 1, gpu: 0.5}
    """
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def error_for(tmp_path: Path, text: str) -> tuple[str, Path]:
    path = write(tmp_path, text)
    with pytest.raises(StudyError) as info:
        load_study(str(path))
    return str(info.value), path


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_search_spaces_load_with_hand_counted_sizes(name, tmp_path):
    spec = load_study(name, cwd=tmp_path)  # empty cwd: found in the package
    cells = expand_cells(spec)
    assert (len(cells), len(cells) * spec.tune.samples_per_cell) == SHIPPED[name]
    assert len({c.cell_id for c in cells}) == len(cells)
    assert len({c.cell_hash for c in cells}) == len(cells)
    for trial in cells[0].trial_dicts(spec, random.Random(0)) + cells[-1].trial_dicts(
        spec, random.Random(1)
    ):
        config = TrialConfig.from_dict(trial)
        assert config.task == spec.task and config.eval_domains == spec.evaluate


def test_shipped_names_are_listed_and_unknown_name_lists_them(tmp_path):
    assert set(SHIPPED) <= set(available_studies(tmp_path))
    with pytest.raises(CapstudyError, match="available: .*full_grid.*smoke"):
        load_study("no_such_study", cwd=tmp_path)


def test_local_search_spaces_folder_wins_over_packaged(tmp_path):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "smoke.yaml").write_text(BASE)
    assert load_study("smoke", cwd=tmp_path).name == "t"


def test_base_study_parses_grid_sampled_and_trials(tmp_path):
    spec = load_study(str(write(tmp_path, BASE)))
    assert spec.grid_names == ("family", "phi", "init", "train", "seed")
    # 1e-4 (no dot) is a float here, not YAML 1.1's string
    assert spec.sampled_space() == {"lr": ("loguniform", (1e-4, 1e-2))}
    cells = expand_cells(spec)
    assert len(cells) == 2 * 2 * 2 * 1 * 2
    assert cells[0].cell_id == "efficientnet_b0|phi=0|init=random|train=synth_a/rgb|seed=0"
    assert cells[-1].cell_id == "mobilenetv3_small|phi=-3|init=imagenet|train=synth_a/rgb|seed=1"
    trials = cells[5].trial_dicts(spec, random.Random(0))
    assert len(trials) == 3 and len({t["lr"] for t in trials}) == 3
    config = TrialConfig.from_dict(trials[0])
    assert config.train_domain == "synth_a/rgb" and config.hpo_keys == ("lr",)
    assert 1e-4 <= config.lr <= 1e-2 and config.epochs == 4


def test_grid_values_are_coerced_to_the_trial_type(tmp_path):
    spec = load_study(str(write(tmp_path, BASE.replace("[0, -3]", "[0.0, -3.0]"))))
    assert expand_cells(spec)[0].cell_id.startswith("efficientnet_b0|phi=0|")


def test_per_family_phi_and_free_scale(tmp_path):
    text = BASE.replace(
        "phi: {grid_search: [0, -3]}",
        "phi: {grid_search: {efficientnet_b0: [-7], mobilenetv3_small: [-6, -1]}}",
    )
    cells = expand_cells(load_study(str(write(tmp_path, text))))
    assert [(c.values["family"], c.values["phi"]) for c in cells[::4]] == [
        ("efficientnet_b0", -7),
        ("mobilenetv3_small", -6),
        ("mobilenetv3_small", -1),
    ]
    free = BASE.replace(
        "  phi: {grid_search: [0, -3]}\n",
        "  width: {grid_search: [0.5, 0.25]}\n  depth: {grid_search: [1.0]}\n",
    )
    spec = load_study(str(write(tmp_path, free)))
    assert spec.is_free_scale and spec.grid_names[:3] == ("family", "width", "depth")


def test_unknown_top_level_key(tmp_path):
    text = BASE + "colour: blue\n"
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'colour')}: colour: unknown top-level key" in msg


def test_unknown_key_under_space(tmp_path):
    text = BASE.replace("  seed:", "  dropout: {grid_search: [0.1]}\n  seed:")
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'dropout')}: space.dropout: unknown trial key" in msg


def test_unknown_distribution(tmp_path):
    text = BASE.replace("lr: {loguniform: [1e-4, 1.0e-2]}", "lr: {normal: [0.001, 0.1]}")
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'normal')}: space.lr.normal: unknown distribution" in msg


def test_bad_family(tmp_path):
    text = BASE.replace("[efficientnet_b0, mobilenetv3_small]", "[efficientnet_b0,\n    resnet50]")
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'resnet50')}: space.family.grid_search[1]" in msg
    assert "unknown family 'resnet50'" in msg


def test_phi_out_of_range_for_one_family(tmp_path):
    text = BASE.replace("phi: {grid_search: [0, -3]}", "phi: {grid_search: [0, -7]}")
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'phi:')}: space.phi.grid_search[1]" in msg
    assert "mobilenetv3_small's range [-6, 0]" in msg and "per family" in msg


def test_metric_must_suit_the_task(tmp_path):
    text = BASE.replace("metric: val/map50", "metric: val/top1")
    msg, path = error_for(tmp_path, text)
    assert f"{path}:1: study.metric: must be one of val/map, val/map50" in msg
    text = BASE.replace("metric: val/map50", "metric: eval/synth_a/ir/map50")
    assert "study.metric" in error_for(tmp_path, text)[0]


@pytest.mark.parametrize(
    ("replacement", "needle"),
    [("epochs: 0", "epochs=0 must be >= 1"), ("epochs: 2.5", "expected an integer")],
)
def test_bad_trial_value_in_fixed(tmp_path, replacement, needle):
    text = BASE.replace("epochs: 4", replacement)
    msg, path = error_for(tmp_path, text)
    assert f"{path}:{line_of(text, 'epochs:')}: fixed.epochs: " in msg and needle in msg


def test_bad_values_elsewhere_are_located(tmp_path):
    cases = [
        ("image_size: 128", "image_size: 100", "fixed.image_size", "multiple of 32"),
        ("[random, imagenet]", "[random, imagenet21k]", "space.init.grid_search[1]", "init"),
        ("[synth_a/rgb]}", "[domainnet/real]}", "space.train.grid_search[0]", "classification"),
        ("[synth_a/rgb, synth_a/ir]", "[synth_a/uv]", "evaluate[0]", "modalities"),
        ("[1e-4, 1.0e-2]", "[0, 1.0e-2]", "space.lr.loguniform[0]", "lo > 0"),
        ("init: {grid_search:", "init: {choice:", "space.init.choice", "grid_search or fixed"),
        ("reduction: 2", "reduction: 1", "tune.asha.reduction", "> 1.0"),
        ("gpu: 0.5", "gpu: 1.5", "resources.gpu", "whole GPUs"),
        ("  epochs: 4", "  task: detection", "fixed.task", "study.task"),
        ("lr: {loguniform", "warmup_epochs: {uniform", "space.warmup_epochs.uniform", "randint"),
        ("lr: {loguniform: [1e-4, 1.0e-2]}", "lr: 0.1", "space.lr", "belongs in fixed"),
    ]
    for old, new, key_path, needle in cases:
        text = BASE.replace(old, new)
        assert text != BASE, old
        msg, _ = error_for(tmp_path, text)
        assert f": {key_path}: " in msg and needle in msg, (new, msg)


def test_duplicate_key_and_cross_section_errors(tmp_path):
    text = BASE.replace("  image_size: 128", "  image_size: 128\n  epochs: 5")
    msg, _ = error_for(tmp_path, text)
    assert f":{line_of(text, 'epochs: 5')}: fixed.epochs: duplicate key (first at line 3)" in msg
    text = BASE.replace("  seed:", "  epochs: {grid_search: [2]}\n  seed:")
    assert "space.epochs: also set in fixed (line 3)" in error_for(tmp_path, text)[0]
    text = BASE.replace("  phi: {grid_search: [0, -3]}\n", "  width: {grid_search: [0.5]}\n")
    assert "space.width: a free scale needs both width and depth" in error_for(tmp_path, text)[0]
    text = BASE.replace("{grid_search: [0, -3]}", "{grid_search: {efficientnet_b0: [0]}}")
    assert "per-family values must name exactly" in error_for(tmp_path, text)[0]


def test_global_asha_scope_warns_and_is_recorded(tmp_path):
    text = BASE.replace("scope: cell", "scope: global")
    with pytest.warns(StudyWarning, match="global ASHA"):
        spec = load_study(str(write(tmp_path, text)))
    assert spec.tune.asha.scope == "global"
    assert len(spec.warnings) == 1 and "tune.asha.scope" in spec.warnings[0]


def test_pretrain_resources_default_to_the_trials_and_are_checked(tmp_path):
    spec = load_study(str(write(tmp_path, BASE)))
    assert spec.pretrain.resources is None
    assert (spec.pretrain_resources.cpu, spec.pretrain_resources.gpu) == (1.0, 0.5)
    # A key left out takes the trials' value; resources never change the weights' identity.
    text = BASE + "pretrain: {epochs_imagenet: 3, resources: {gpu: 1}}\n"
    spec2 = load_study(str(write(tmp_path, text)))
    assert (spec2.pretrain_resources.cpu, spec2.pretrain_resources.gpu) == (1.0, 1.0)
    assert spec2.resources.gpu == 0.5
    assert "resources" not in spec2.pretrain.settings()
    again = load_study(str(write(tmp_path, BASE + "pretrain: {epochs_imagenet: 3}\n")))
    assert spec2.pretrain.fingerprint() == again.pretrain.fingerprint()
    cases = [
        ("resources: {gpu: 1.5}", "pretrain.resources.gpu", "whole GPUs"),
        ("resources: {cpu: 0}", "pretrain.resources.cpu", "must be > 0.0"),
        ("resources: {cpus: 2}", "pretrain.resources.cpus", "allowed here: cpu, gpu"),
        ("resources: 4", "pretrain.resources", "must be a mapping with keys cpu, gpu"),
    ]
    for section, key_path, needle in cases:
        text = BASE + f"pretrain:\n  {section}\n"
        msg, path = error_for(tmp_path, text)
        assert f"{path}:{line_of(text, section)}: {key_path}: " in msg and needle in msg, msg
