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
    assert "[checkpoint_every=5, eval_every=1, shift_eval=rungs, val_eval=rungs]" in out
    assert "at the rungs and the end, its loss pass" in out and "with the loss pass)" in out


# One cell, three trials of 9 epochs, ASHA grace 1 and eta 3: rungs at epochs 1 and 3; two
# trials stop after epoch 1, one runs all 9 (11 trial-epochs).
TINY = """
study: {name: tiny_val, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 9, image_size: 128, max_eval_images: 50, val_eval: VAL_EVAL}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-7]}
  init: {grid_search: [random]}
  train: {grid_search: [synth_a/rgb]}
  lr: {loguniform: [1.0e-3, 1.0e-2]}
evaluate: [synth_b/rgb]
tune: {samples_per_cell: 3, search: random, asha: {grace: 1, reduction: 3, scope: cell}}
resources: {cpu: 1, gpu: 0}
"""


def _tiny(tmp_path, val_eval: str):
    path = tmp_path / f"tiny_{val_eval}.yaml"
    path.write_text(TINY.replace("VAL_EVAL", val_eval))
    return plan(load_study(str(path)))


def test_rung_only_validation_counts_map_at_rungs_and_a_loss_pass_on_the_others(tmp_path):
    every_plan, rungs_plan = _tiny(tmp_path, "every"), _tiny(tmp_path, "rungs")
    assert every_plan.trial_epochs_asha == rungs_plan.trial_epochs_asha == 2 * 1 + 9
    n_val = round(400 * 0.1)  # synth_a's 400 training images, val_fraction 0.1 (under 50)
    every, rungs = cost.estimate(every_plan, None), cost.estimate(rungs_plan, None)
    # every: val/* mAP after each of the 11 trial-epochs, no loss pass.
    assert every.volume.val == 11 * n_val and every.volume.val_loss == 0
    # rungs: mAP after epoch 1 (all three trials), 3 and 9 (the survivor): 5 of 11; the loss
    # pass after the other 6 (on the mAP epochs val/loss comes from the mAP's forward).
    assert rungs.volume.val == 5 * n_val and rungs.volume.val_loss == 6 * n_val
    assert rungs.volume.train == every.volume.train and rungs.volume.shift == every.volume.shift
    assert rungs.every_epoch == every.volume == every.every_epoch
    # Where an evaluation (post-processing and mAP) is slower than the loss pass, as a measured
    # bench says, rung-only validation costs less: 6 mAP passes saved at 10 images/s, 6 loss
    # passes paid at 40 images/s, 18 device-seconds fewer for 40 images.
    bench = {
        "entries": [
            {
                "family": "efficientnet_b0",
                "phi": -7,
                "image_size": 128,
                "train_images_per_s": 5.0,
                "eval_images_per_s": 10.0,
                "forward_images_per_s": 40.0,
            }
        ]
    }
    every_s, rungs_s = cost.estimate(every_plan, bench), cost.estimate(rungs_plan, bench)
    assert every_s.eval_s - rungs_s.eval_s == pytest.approx(n_val * (6 / 10 - 6 / 40))
    assert every_s.train_s == rungs_s.train_s
    # The rough model prices an evaluation at the loss pass's speed / 1.25 (as measured on a
    # CPU): 6 evaluations saved, 6 loss passes paid, 1.2 evaluations' worth fewer.
    rough = cost.variant_speed("efficientnet_b0", -7, "B-7", 128, False, None)
    assert rough.forward == pytest.approx(1.25 * rough.eval)
    assert every.eval_s - rungs.eval_s == pytest.approx(6 * n_val * (1 - 1 / 1.25) / rough.eval)
