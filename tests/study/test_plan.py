"""Dry-run plan: ASHA epoch estimate, pretraining needs, registry check, rendering."""

from __future__ import annotations

import pytest

from capstudy.scaling import Scale
from capstudy.study import load_study, parse_study_text
from capstudy.study.cells import expand_cells
from capstudy.study.plan import asha_rungs, asha_trial_epochs, plan, pretrain_needs

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
    assert len(asked) == 4 and len(p.pretrain_present) == 1 and len(p.pretrain_needed) == 3
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


def test_full_grid_plan(tmp_path):
    p = plan(load_study("full_grid", cwd=tmp_path))
    assert (len(p.cells), p.trials) == (720, 2880)
    assert (p.trial_epochs, p.trial_epochs_asha) == (54000, 270 * 75)
    assert len(p.pretrain_needed) == 30
