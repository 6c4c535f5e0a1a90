"""Pretraining as a dependency graph on real local Ray: each coco stage waits for its own
imagenet stage only. A fast stage function (injected, not a mock of Ray) records when each
stage starts and ends; Ray does the scheduling."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from capstudy.errors import CapstudyError
from capstudy.launch.pretraining import run_pretraining
from capstudy.study import parse_study_text

STUDY = """
study: {name: order, task: detection, metric: val/map50, mode: max}
fixed: {epochs: 1, init: imagenet_coco}
space:
  family: {grid_search: [efficientnet_b0]}
  phi: {grid_search: [-6, -7]}
resources: {cpu: 1, gpu: 0}
"""
SLOW_IMAGENET_S = 8.0  # B-6's imagenet stage; every other stage takes FAST_S
FAST_S = 0.5


class Stages:
    """A stage function that records ``start``/``end`` wall times in ``folder`` (workers
    are other processes: files are what they share) and fails the needs in ``fail``."""

    def __init__(self, folder: Path, fail: tuple[str, ...] = ()) -> None:
        self.folder, self.fail = folder, fail

    def __call__(self, need, settings, roots, tracking_uri) -> str:
        name = f"{need.label}-{need.stage}"
        (self.folder / f"{name}.start").write_text(json.dumps(time.time()))
        slow = need.label == "B-6" and need.stage == "imagenet"
        time.sleep(SLOW_IMAGENET_S if slow else FAST_S)
        if name in self.fail:
            raise RuntimeError(f"{name}: loss diverged (scripted)")
        (self.folder / f"{name}.end").write_text(json.dumps(time.time()))
        return str(self.folder / f"{name}.weights")

    def times(self, name: str) -> tuple[float | None, float | None]:
        def read(suffix: str) -> float | None:
            path = self.folder / f"{name}.{suffix}"
            return json.loads(path.read_text()) if path.exists() else None

        return read("start"), read("end")


def _run(tmp_path, stages: Stages, have=lambda family, capacity, stage: False):
    spec = parse_study_text(STUDY, tmp_path / "order.yaml")
    said: list[str] = []
    made = run_pretraining(
        spec,
        "unused://",
        say=said.append,
        pretrain_fn=stages,
        reuse=lambda need: have(need.family, need.capacity, need.stage),
    )
    return made, said


def test_coco_waits_for_its_own_imagenet_only(tmp_path, local_ray):
    stages = Stages(tmp_path)
    made, said = _run(tmp_path, stages)
    assert sorted(f"{n.label}-{n.stage}" for n in made) == [
        "B-6-coco",
        "B-6-imagenet",
        "B-7-coco",
        "B-7-imagenet",
    ]
    for label in ("B-6", "B-7"):
        _, imagenet_end = stages.times(f"{label}-imagenet")
        coco_start, coco_end = stages.times(f"{label}-coco")
        assert coco_end is not None
        assert coco_start >= imagenet_end  # never before its own imagenet stage ended
    # B-7's coco stage ran while B-6's slower imagenet stage was still going.
    _, slow_end = stages.times("B-6-imagenet")
    assert stages.times("B-7-coco")[1] < slow_end
    assert any("1 CPU, 0 GPU per run" in line for line in said)


def test_coco_whose_imagenet_weights_exist_starts_at_once(tmp_path, local_ray):
    stages = Stages(tmp_path)

    def have(family, capacity, stage):
        return capacity == -7 and stage == "imagenet"  # B-7's imagenet weights registered

    made, said = _run(tmp_path, stages, have)
    assert [f"{n.label}-{n.stage}" for n in made] == ["B-6-imagenet", "B-6-coco", "B-7-coco"]
    assert "pretraining: reusing 1 registered weights" in said
    _, slow_end = stages.times("B-6-imagenet")
    assert stages.times("B-7-coco")[1] < slow_end


def test_failed_imagenet_stage_fails_its_coco_stage_naming_both(tmp_path, local_ray):
    stages = Stages(tmp_path, fail=("B-7-imagenet",))
    with pytest.raises(CapstudyError) as err:
        _run(tmp_path, stages)
    text = str(err.value)
    assert text.startswith("2 pretraining stage(s) failed")
    assert "imagenet stage of B-7 (efficientnet_b0 phi=-7): RuntimeError: B-7-imagenet" in text
    assert (
        "coco stage of B-7 (efficientnet_b0 phi=-7): not run, because the imagenet stage of "
        "B-7 it starts from failed" in text
    )
    assert stages.times("B-7-coco") == (None, None)  # Ray never started it
    # The unrelated variant still finished both stages (a relaunch reuses them).
    assert stages.times("B-6-coco")[1] is not None
