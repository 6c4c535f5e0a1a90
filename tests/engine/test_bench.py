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
    # The per-core figure is cached for the dry-run's cost estimate.
    from capstudy.cost import load_bench

    (entry,) = load_bench("cpu")["entries"]
    assert (entry["family"], entry["phi"], entry["image_size"]) == ("efficientnet_b0", -7, 64)
    assert entry["train_images_per_s"] == row["train_images_per_s"]


def test_an_unknown_variant_is_a_clear_error(capsys):
    assert run_cli(["bench", "trial", "--device", "cpu", "--variant", "B-9"]) == 2
    assert "'B-9' is not one of" in capsys.readouterr().err
