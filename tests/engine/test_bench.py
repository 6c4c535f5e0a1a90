"""`capstudy bench trial` on a CPU: the table, the JSON rows and a clean error."""

from __future__ import annotations

import json

from clitools import run_cli
from enginefixtures import small_data  # noqa: F401  (fixture)


def test_bench_trial_prints_the_table_on_cpu(tmp_path, capsys):
    out = tmp_path / "rows.json"
    args = ["bench", "trial", "--device", "cpu", "--variant", "B-7", "--size", "64"]
    args += ["--images", "16", "--seconds", "0.2", "--threads", "1", "--json", str(out)]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "trial img/s" in printed and "efficiency" in printed and "B-7" in printed
    (row,) = json.loads(out.read_text())["rows"]
    assert row["label"] == "B-7" and row["image_size"] == 64 and row["images"] == 16
    assert 0 < row["trial_images_per_s"] <= row["train_images_per_s"]
    assert row["efficiency"] == row["trial_images_per_s"] / row["step_images_per_s"]
    assert row["packed"] == {}  # no GPU: no packed columns
    # The breakdowns: every phase timed, and the step phases add up to the step's wall time
    # (on a CPU each phase ends when its operations return; the loop adds little around it).
    assert list(row["step_ms"]) == ["forward", "loss", "backward", "optimizer"]
    assert all(v > 0 for v in row["step_ms"].values())
    step_ms = 1000 * 16 / row["step_images_per_s"]  # batch 16
    assert 0.8 * step_ms <= sum(row["step_ms"].values()) <= step_ms
    assert list(row["eval_s"]) == ["forward", "postprocess", "transfer", "convert", "cocoeval"]
    assert row["eval_s"]["forward"] > 0 and row["eval_s"]["cocoeval"] > 0
    assert "step breakdown (ms per step)" in printed and "evaluation breakdown" in printed
    assert row["baseline"] == {} and row["step_speedup"] is None
    # The per-core figure is cached for the dry-run's cost estimate.
    from capstudy import cost
    from capstudy.cost import load_bench

    (entry,) = load_bench("cpu")["entries"]
    assert (entry["family"], entry["phi"], entry["image_size"]) == ("efficientnet_b0", -7, 64)
    assert entry["train_images_per_s"] == row["train_images_per_s"]
    # ... with the evaluation and loss-pass speeds, which the cost prices them at.
    assert entry["eval_images_per_s"] == row["eval_images_per_s"] > 0
    assert entry["forward_images_per_s"] == row["forward_images_per_s"] > 0
    speed = cost.variant_speed("efficientnet_b0", -7, "B-7", 64, False, load_bench("cpu"))
    assert (speed.eval, speed.forward) == (
        entry["eval_images_per_s"],
        entry["forward_images_per_s"],
    )
    assert "eval img/s" in printed and "loss pass img/s" in printed


def test_an_unknown_variant_is_a_clear_error(capsys):
    assert run_cli(["bench", "trial", "--device", "cpu", "--variant", "B-9"]) == 2
    assert "'B-9' is not one of" in capsys.readouterr().err


def test_bench_trial_times_the_old_step_beside_the_new(tmp_path, capsys):
    out = tmp_path / "rows.json"
    args = ["bench", "trial", "--device", "cpu", "--variant", "B-7", "--size", "64", "--images"]
    args += ["16", "--seconds", "0.2", "--threads", "1", "--baseline", "--json", str(out)]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    old = row["baseline"]
    assert list(old["step_ms"]) == ["forward", "loss", "backward", "optimizer"]
    assert old["eval_s"]["cocoeval"] > 0
    assert row["step_speedup"] == row["step_images_per_s"] / old["step_images_per_s"]
    assert "step vs old" in printed and "│ old " in printed


def test_the_step_bench_lays_its_batch_out_as_the_loader_does():
    """A CPU conv runs ~1.5x faster on the loader's channels-last batches than on NCHW ones;
    a step bench on NCHW noise reported trial epochs faster than the step alone."""
    import torch

    from capstudy.data import BatchLoader, get_split
    from capstudy.engine.breakdown import random_batch

    real, _ = next(
        iter(BatchLoader(get_split("synth_a/rgb", "eval", 64), 4, shuffle=False, seed=0))
    )
    bench, targets = random_batch(4, 64, torch.device("cpu"), torch.Generator())
    assert bench.shape == real.shape and bench.stride() == real.stride()
    assert len(targets) == 4
