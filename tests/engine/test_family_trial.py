"""A family registered in one module runs a real trial from a study file."""

import json
import math

from enginefixtures import small_data  # noqa: F401  (autouse fixture: small synthetic data)

from capstudy.config import TrialConfig
from capstudy.families import PARAMS_FILE

GOLDEN = json.loads(PARAMS_FILE.read_text())


def test_a_study_of_the_third_family_validates_and_runs(tmp_path):
    """A family added in one module is usable in a study file, end to end through a trial."""
    from capstudy.engine import run_trial
    from capstudy.study import expand_cells, parse_study_text

    text = """
study: {name: m4, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 1, image_size: 64, batch_size: 8, head_width: 8, max_train_images: 16,
        max_eval_images: 8, threads: 1}
space:
  family: {grid_search: [mobilenetv4_conv_small]}
  phi: {grid_search: [-6, -5]}
  init: {grid_search: [random]}
  train: {grid_search: [synth_a/rgb]}
  seed: {grid_search: [0]}
evaluate: [synth_a/rgb]
tune: {samples_per_cell: 1, search: random, asha: {grace: 1, reduction: 2, scope: cell}}
"""
    spec = parse_study_text(text, tmp_path / "m4.yaml")
    cells = expand_cells(spec)
    assert [c.values["phi"] for c in cells] == [-6, -5]
    config = TrialConfig.from_dict(cells[0].trial_dict(spec))
    result = run_trial(config)
    assert (
        result.metrics["capacity/backbone_params"]
        == GOLDEN["ultrasmall"]["mobilenetv4_conv_small:-6"]
    )
    assert math.isfinite(result.metrics["train/loss"])
