"""The cost estimate of ``--dry-run``: counted from the plan, measured speed when cached."""

from __future__ import annotations

import pytest
from clitools import run_cli

from capstudy import cost
from capstudy.study import load_study
from capstudy.study.plan import plan


def test_dry_run_prints_a_cost_line_and_how_to_measure(capsys):
    assert run_cli(["launch", "--space", "full_grid", "--dry-run", "--devices", "8"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out or "CPU core-hours" in out
    assert "on 8 " in out
    assert "capstudy bench trial" in out and "rough model" in out


def test_measured_throughput_replaces_the_rough_model():
    p = plan(load_study("smoke"))
    rough = cost.estimate(p, None)
    assert rough.measured == 0 and rough.rough == 8
    entries = [
        {
            "family": f,
            "phi": phi,
            "image_size": 128,
            "train_images_per_s": 100.0,
            "eval_images_per_s": 300.0,
        }
        for f, phis in (
            ("efficientnet_b0", (-4, -5, -6, -7)),
            ("mobilenetv3_small", (-3, -4, -5, -6)),
        )
        for phi in phis
    ]
    path = cost.save_bench(entries)
    assert path.parent.name == "bench" and cost.load_bench()["entries"]
    fast = cost.estimate(p, cost.load_bench())
    assert fast.measured == 8 and fast.rough == 0
    # Twice the speed costs half the device time: the count of images is the same.
    double = [{**e, "train_images_per_s": 200.0, "eval_images_per_s": 600.0} for e in entries]
    cost.save_bench(double)
    assert len(cost.load_bench()["entries"]) == 8  # replaced, not appended
    halved = cost.estimate(p, cost.load_bench())
    assert halved.train_s == pytest.approx(fast.train_s / 2)
    assert halved.eval_s == pytest.approx(fast.eval_s / 2)
    assert "measured on this machine" in cost.cost_lines(p, 2, cost.load_bench())


def test_cost_counts_asha_epochs_and_every_evaluation_domain():
    spec = load_study("smoke")
    p = plan(spec)
    speed = cost.variant_speed("efficientnet_b0", -7, "B-7", 128, False, None)
    est = cost.estimate(p, None)
    assert est.train_s > 0 and est.eval_s > 0 and est.pretrain_s > 0
    # 400 train images per epoch at 128 px: the whole study's trial-epochs times that.
    per_epoch_b7 = 400 / speed.train
    assert est.train_s > per_epoch_b7 * p.trial_epochs_asha / 8


def test_volume_counts_checkpoint_and_shift_settings_per_trial():
    # A full FLIR trial of full_grid: 50 epochs, rungs 5, 15, 45.
    v = {
        "train": "flir/rgb",
        "val_fraction": 0.1,
        "max_train_images": 0,
        "max_eval_images": 1000,
        "checkpoint_every": 5,
        "eval_every": 1,
        "shift_eval": "rungs",
    }
    domains = {"flir/rgb", "flir/ir", "llvip/rgb", "llvip/ir"}
    vol = cost.trial_volume(v, 50, 50, (5, 15, 45), domains)
    n_val = round(4129 * 0.1)
    assert vol.train == 50 * (4129 - n_val) and vol.val == 50 * n_val
    assert vol.shift == 4 * 4 * 1000  # 4 domains, capped at 1000, after epochs 5, 15, 45, 50
    assert vol.checkpoints == 10
    # Stopped by ASHA at epoch 15: two shift evaluations, three checkpoints.
    early = cost.trial_volume(v, 15, 50, (5, 15, 45), domains)
    assert early.shift == 2 * 4000 and early.checkpoints == 3
    every = cost.trial_volume(
        {**v, "shift_eval": "every", "checkpoint_every": 1}, 50, 50, (), domains
    )
    assert every.shift == 50 * 4000 and every.checkpoints == 50 and every.train == vol.train


def test_dry_run_shows_images_with_and_without_the_settings(capsys):
    p = plan(load_study("full_grid"))
    est = cost.estimate(p, None)
    assert est.volume.train == est.every_epoch.train
    assert est.volume.shift < est.every_epoch.shift / 4  # shift_eval: rungs
    assert est.volume.checkpoints < est.every_epoch.checkpoints / 4  # checkpoint_every: 5
    assert run_cli(["launch", "--space", "full_grid", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "images (ASHA estimate): trained" in out and "every epoch instead: evaluated" in out
    assert "[checkpoint_every=5, eval_every=1, shift_eval=rungs]" in out
