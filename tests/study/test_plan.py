"""Dry-run plan: ASHA epoch estimate, pretraining needs, registry check, rendering."""

from __future__ import annotations

import pytest

from capstudy.scaling import BASE_RESOLUTION, Scale, compound_scale
from capstudy.study import load_study, parse_study_text
from capstudy.study.cells import expand_cells
from capstudy.study.checks import DEFAULT_FAMILY
from capstudy.study.plan import (
    PretrainNeed,
    asha_rungs,
    asha_stops,
    asha_trial_epochs,
    plan,
    pretrain_needs,
)

STUDY = """\
study: {task: detection, metric: val/map50}
fixed: {epochs: 9}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-2, -5]}
  init: {grid_search: [random, imagenet, imagenet_coco]}
  seed: {grid_search: [0, 1]}
  lr: {uniform: [0.001, 0.01]}
tune: {samples_per_cell: 9, asha: {grace: 1, reduction: 3, scope: cell}}
"""


def test_asha_rungs_follow_grace_times_powers_of_eta():
    assert asha_rungs(1, 3, 9) == [1, 3]  # 9 = max_t: every trial ends there, no decision
    assert asha_rungs(5, 3, 50) == [5, 15, 45]
    assert asha_rungs(2, 1.5, 5) == [2, 3]  # 4.5 would act at the whole epoch 5 = max_t
    assert asha_rungs(3, 1.5, 9) == [3, 5, 7]  # 4.5 -> 5, 6.75 -> 7
    assert asha_rungs(4, 2, 4) == []


def test_asha_epochs_hand_checked():
    # 9 trials to epoch 1; ceil(9/3)=3 continue to 3 (+2 each); 1 continues to 9 (+6).
    assert asha_trial_epochs(9, 1, 3, 9) == 9 * 1 + 3 * 2 + 1 * 6 == 21
    # 4 trials, rungs 5, 15, 45, max_t 50: 4*5 + 2*10 + 1*30 + 1*5.
    assert asha_trial_epochs(4, 5, 3, 50) == 75
    # one trial per cell: nothing to compare, it runs to max_t.
    assert asha_trial_epochs(1, 1, 3, 12) == 12


def test_plan_counts_cells_trials_epochs_and_pretraining(tmp_path):
    spec = parse_study_text(STUDY, tmp_path / "s.yaml")
    p = plan(spec)
    assert len(p.cells) == 2 * 3 * 2 and p.trials == 12 * 9
    assert p.trial_epochs == 108 * 9 and p.trial_epochs_asha == 12 * 21
    needs = [(n.family, n.capacity, n.stage) for n in p.pretrain_needed]
    assert [n.label for n in p.pretrain_needed] == ["B-2", "B-5", "B-2", "B-5"]
    assert needs == [
        ("efficientnet_b0", -2, "imagenet"),
        ("efficientnet_b0", -5, "imagenet"),
        ("efficientnet_b0", -2, "coco"),
        ("efficientnet_b0", -5, "coco"),
    ]
    assert p.pretrain_epochs == 2 * 15 + 2 * 10  # recipe defaults when pretrain is omitted


def test_plan_asks_the_registry_and_renders(tmp_path):
    spec = parse_study_text(STUDY, tmp_path / "s.yaml")
    asked = []

    def have(family, capacity, stage):
        asked.append((family, capacity, stage))
        return stage == "imagenet" and capacity == -2

    p = plan(spec, have)
    assert asked == [
        ("efficientnet_b0", -2, "imagenet"),
        ("efficientnet_b0", -5, "imagenet"),
        ("efficientnet_b0", -2, "coco"),
        ("efficientnet_b0", -5, "coco"),
    ]
    assert len(p.pretrain_present) == 1 and len(p.pretrain_needed) == 3
    text = p.render()
    assert "cells                        12" in text
    assert "trials                       108" in text
    assert "1 runs" in text and "registry not checked" not in text
    row = next(line for line in text.splitlines() if "phi=-2" in line)
    assert row.split()[-2:] == ["have", "need"]
    assert "resources per pretraining    1 CPU, 0 GPU (the trials' resources)" in text


def test_plan_shows_pretrain_resources_when_given(tmp_path):
    text = STUDY + "pretrain: {resources: {cpu: 4, gpu: 1}}\n"
    rendered = plan(parse_study_text(text, tmp_path / "s.yaml")).render()
    assert "resources per trial          1 CPU, 0 GPU" in rendered
    assert "resources per pretraining    4 CPU, 1 GPU (pretrain.resources)" in rendered
    no_pretraining = STUDY.replace("[random, imagenet, imagenet_coco]", "[random]")
    unneeded = plan(parse_study_text(no_pretraining, tmp_path / "s.yaml")).render()
    assert "resources per pretraining" not in unneeded


def test_global_scope_is_one_bracket_over_all_trials(tmp_path):
    text = STUDY.replace("scope: cell", "scope: global")
    with pytest.warns(UserWarning):
        spec = parse_study_text(text, tmp_path / "s.yaml")
    p = plan(spec)
    assert p.trial_epochs_asha == asha_trial_epochs(108, 1, 3, 9)
    assert "warning:" in p.render()


def test_free_scale_needs_ignore_resolution(tmp_path):
    spec = load_study("free_scale", cwd=tmp_path)
    needs = pretrain_needs(spec, expand_cells(spec))
    # 3 widths x 3 depths; the two resolutions share weights.
    assert len(needs) == 9 and {n.stage for n in needs} == {"imagenet"}
    assert Scale(0.7, 1.0, 224) in {n.capacity for n in needs}
    # Rows name width and depth, and no resolution (the study varies image_size instead).
    rendered = plan(spec).render().splitlines()
    row = "  efficientnet_b0    w=0.7 d=1              B(w=0.7,d=1)"
    row += "              -      8      16  need       -"
    assert row in rendered


def test_full_grid_plan(tmp_path):
    p = plan(load_study("full_grid", cwd=tmp_path))
    assert (len(p.cells), p.trials) == (720, 2880)
    assert (p.trial_epochs, p.trial_epochs_asha) == (144000, 720 * 75)
    assert len(p.pretrain_needed) == 30


@pytest.mark.parametrize(("grace", "reduction", "max_t"), [(1, 3, 0), (0, 3, 9), (1, 1, 9)])
def test_asha_rungs_refuse_settings_that_never_decide(grace, reduction, max_t):
    # (reduction 1 would loop for ever: the milestone never grows.)
    with pytest.raises(ValueError, match=r"ASHA needs grace >= 1, reduction > 1, max_t >= 1"):
        asha_rungs(grace, reduction, max_t)


def test_milestones_that_round_to_one_epoch_decide_once():
    # 1, 1.2, 1.44, 1.73, 2.07, 2.49, 2.99, 3.58, 4.30 -> epochs 1, 2, 2, 2, 3, 3, 3, 4, 5.
    assert asha_rungs(1, 1.2, 5) == [1, 2, 3, 4]


def test_asha_stops_lists_only_rungs_where_trials_stop():
    assert asha_stops(9, 1, 3, 9) == [(1, 6), (3, 2), (9, 1)]
    assert asha_stops(1, 1, 3, 12) == [(12, 1)]  # alone in its cell: never stopped
    assert asha_stops(2, 2, 3, 6) == [(2, 1), (6, 1)]


def test_defaults_and_a_checkpoint_init(tmp_path):
    """No family or phi dim: the default family at phi 0; a checkpoint init needs no run."""
    (tmp_path / "w.pt").write_bytes(b"")
    text = """\
study: {task: detection, metric: val/map50}
fixed: {epochs: 3}
space:
  init: {grid_search: [random, imagenet, w.pt]}
  seed: {grid_search: [0, 1]}
"""
    spec = parse_study_text(text, tmp_path / "s.yaml")
    needs = pretrain_needs(spec, expand_cells(spec))
    assert needs == [PretrainNeed(DEFAULT_FAMILY, 0, "imagenet", "B0")]


def test_a_preset_study_needs_weights_by_width_and_depth(tmp_path):
    text = STUDY.replace("fixed: {epochs: 9}", "fixed: {epochs: 9, preset: efficientnet}")
    spec = parse_study_text(text, tmp_path / "s.yaml")
    needs = pretrain_needs(spec, expand_cells(spec))
    m2, m5 = compound_scale(-2, "efficientnet"), compound_scale(-5, "efficientnet")
    assert m2.resolution != BASE_RESOLUTION  # the preset shrinks resolution; weights ignore it
    assert [(n.capacity, n.stage, n.label) for n in needs] == [
        (Scale(m2.width, m2.depth, BASE_RESOLUTION), "imagenet", "B-2"),
        (Scale(m5.width, m5.depth, BASE_RESOLUTION), "imagenet", "B-5"),
        (Scale(m2.width, m2.depth, BASE_RESOLUTION), "coco", "B-2"),
        (Scale(m5.width, m5.depth, BASE_RESOLUTION), "coco", "B-5"),
    ]
