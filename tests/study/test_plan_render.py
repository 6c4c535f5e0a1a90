# ruff: noqa: E501  (the expected tables are as wide as the plan prints them)
"""The dry-run plan as printed (``capstudy launch --dry-run``), line for line.

Every figure in the expected text was checked by hand (comments): a plan that says the wrong
number of trials, epochs or pretraining runs misleads whoever sizes a study from it.
"""

from __future__ import annotations

import pytest

from capstudy.study import parse_study_text
from capstudy.study.plan import plan

# Two families with their own phi lists, a non-default preset, three kinds of sampled dim,
# global ASHA (a warning), a cap on concurrency, fractional resources, own pretrain resources.
RICH = """\
study: {name: rich, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 10, preset: efficientnet}
space:
  family: {grid_search: [efficientnet_b0, mobilenetv3_small]}
  phi:
    grid_search:
      efficientnet_b0: [-1, -2]
      mobilenetv3_small: [-1]
  init: {grid_search: [random, imagenet]}
  seed: {grid_search: [0, 1, 2]}
  lr: {loguniform: [0.0001, 0.01]}
  weight_decay: {uniform: [0.0, 1.0]}
  batch_size: {choice: [8, 16]}
  head_width: {randint: [8, 33]}
evaluate: [synth_a/rgb, synth_a/ir]
tune: {samples_per_cell: 4, max_concurrent: 3, asha: {grace: 2, reduction: 2, scope: global}}
resources: {cpu: 0.5, gpu: 0.25}
pretrain: {resources: {cpu: 2, gpu: 1}}
"""

# 3 variants x 2 inits x 3 seeds = 18 cells; x 4 samples = 72 trials; x 10 epochs = 720.
# Global ASHA over all 72, rungs 2, 4, 8: 36 stop at 2, 18 at 4, 9 at 8, 9 run to 10:
# 72 + 72 + 72 + 90 = 306 epochs (42%). One imagenet run per variant (no coco init): the
# registry has the MobileNet one, so 2 needed (2 x 15 default epochs) and 1 reused.
RICH_TEXT = """\
Study rich: detection, selected on val/map50 (max)
  file                         {source}
  grid                         family 2 × phi 2/1 (per family) × init 2 × seed 3
  sampled (HPO)                lr loguniform [0.0001, 0.01]; weight_decay uniform [0, 1]; \
batch_size choice [8, 16]; head_width randint [8, 33]
  evaluate                     synth_a/rgb, synth_a/ir

  cells                        18
  trials                       72  (4 per cell, search: random)
  resources per trial          0.5 CPU, 0.25 GPU; max concurrent: 3
  ASHA (scope global)          grace 2, reduction 2, max_t 10; rungs at 2, 4, 8
  trial-epochs, no early stop  720
  trial-epochs, with ASHA      ≈306  (42%, estimate)
  pretraining still needed     2 runs, 30 epochs
  pretraining reused           1 runs
  resources per pretraining    2 CPU, 1 GPU (pretrain.resources); each coco stage starts \
when its own imagenet stage ends

Variants
  family             capacity               label                params  cells  trials  imagenet   coco
  efficientnet_b0    phi=-1 (efficientnet)  B-1               3,050,752      6      24  need       -
  efficientnet_b0    phi=-2 (efficientnet)  B-2               2,125,854      6      24  need       -
  mobilenetv3_small  phi=-1 (efficientnet)  S-1                 801,808      6      24  have       -

warning: {source}:16: tune.asha.scope: global ASHA compares trials across cells, so it stops \
small or scratch models for being small or scratch — the very comparison the study makes; \
prefer scope: cell"""

# Free width/depth triples with a resolution dim: a row per resolution, one weights run per
# width x depth (2). 8 cells, one trial each: nothing to compare, 8 x 4 = 32 epochs (100%).
FREE = """\
study: {task: classification, metric: val/top1}
fixed: {family: mobilenetv3_small, epochs: 4}
space:
  width: {grid_search: [0.5, 0.25]}
  depth: {grid_search: [1.0]}
  resolution: {grid_search: [160, 224]}
  init: {grid_search: [random, imagenet]}
"""

FREE_TEXT = """\
Study free: classification, selected on val/top1 (max)
  file                         {source}
  grid                         width 2 × depth 1 × resolution 2 × init 2
  sampled (HPO)                (none)
  evaluate                     (in-domain only)

  cells                        8
  trials                       8  (1 per cell, search: random)
  resources per trial          1 CPU, 0 GPU; max concurrent: as resources allow
  ASHA (scope cell)            grace 1, reduction 3, max_t 4; rungs at 1, 3
  trial-epochs, no early stop  32
  trial-epochs, with ASHA      ≈32  (100%, estimate)
  pretraining still needed     2 runs, 30 epochs (registry not checked)
  resources per pretraining    1 CPU, 0 GPU (the trials' resources); each coco stage starts \
when its own imagenet stage ends

Variants
  family             capacity               label                params  cells  trials  imagenet   coco
  mobilenetv3_small  w=0.5 d=1 r=160        S(w=0.5,d=1)              -      2       2  need       -
  mobilenetv3_small  w=0.5 d=1 r=224        S(w=0.5,d=1)              -      2       2  need       -
  mobilenetv3_small  w=0.25 d=1 r=160       S(w=0.25,d=1)             -      2       2  need       -
  mobilenetv3_small  w=0.25 d=1 r=224       S(w=0.25,d=1)             -      2       2  need       -"""


def test_rich_study_renders_every_figure(tmp_path):
    source = tmp_path / "rich.yaml"
    with pytest.warns(UserWarning, match="global ASHA"):
        spec = parse_study_text(RICH, source)
    rendered = plan(spec, lambda family, capacity, stage: family == "mobilenetv3_small").render()
    assert rendered == RICH_TEXT.replace("{source}", str(source))


def test_free_scale_study_renders_its_capacity_dims(tmp_path):
    source = tmp_path / "free.yaml"
    rendered = plan(parse_study_text(FREE, source)).render()
    assert rendered == FREE_TEXT.replace("{source}", str(source))


def test_a_study_without_grid_dims_or_phi_is_one_default_cell(tmp_path):
    text = "study: {task: detection, metric: val/map50}\nfixed: {epochs: 3}\n"
    rendered = plan(parse_study_text(text, tmp_path / "one.yaml")).render().splitlines()
    assert "  grid                         (none: one cell)" in rendered
    # No phi anywhere: the base model, phi 0, of the default family and preset (no suffix).
    row = "  efficientnet_b0    phi=0                  B0                3,595,388      1       1  -          -"
    assert rendered[-1] == row  # random init only: no pretraining stage
