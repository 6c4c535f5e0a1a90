"""The fast step and evaluation paths on a real detector and real batches.

The batched loss reads nothing back to the host; the batched evaluation gives the same
detections as torchvision's per-image post-processing on a whole split; the graphed step's
fixed-shape loss (padded box slots, anchors computed once) equals the eager loss, and on a
CPU the ``cuda_graphs`` key leaves the eager step in place.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy.config import ConfigError, TrialConfig
from capstudy.engine.device import precision_for
from capstudy.engine.fcos_batched import batched_fcos_loss
from capstudy.engine.model import detection_loss, detection_outputs
from capstudy.engine.optim import build_optimizer
from capstudy.engine.step import GraphedStep, make_train_step
from capstudy.heads import build_detector
from capstudy.variants import make_variant

CPU = precision_for(torch.device("cpu"), amp=False)


def _real_batch(size: int = 64, count: int = 8):
    from capstudy.data import BatchLoader, get_split

    split = get_split("synth_a/rgb", "train", size)
    images, targets = next(iter(BatchLoader(split, count, shuffle=False, seed=0)))
    return split, images, targets


def _model(size: int = 64):
    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -7), 3, size)
    # Spread the untrained head's scores so the post-processing comparison has no ties.
    for layer in (model.head.classification_head.cls_logits, model.head.regression_head.bbox_reg):
        torch.nn.init.normal_(layer.weight, std=0.3)
    return model


def test_batched_loss_equals_torchvision_on_a_real_batch():
    _, images, targets = _real_batch()
    model = _model().train()
    assert sum(len(t["labels"]) for t in targets) > 0
    batched = detection_loss(model, images, targets, CPU, batched=True)
    reference = detection_loss(model, images, targets, CPU, batched=False)
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-5)


def test_batched_loss_reads_nothing_back_and_never_masks(monkeypatch):
    _, images, targets = _real_batch()
    model = _model().train()
    outputs = detection_outputs(model, images, targets, CPU)
    reads = []
    for name in ("item", "__bool__", "__int__", "__float__", "tolist", "cpu", "numpy", "nonzero"):
        original = getattr(torch.Tensor, name)

        def wrapped(tensor, *a, _name=name, _original=original, **k):
            reads.append(_name)
            return _original(tensor, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    getitem = torch.Tensor.__getitem__

    def indexing(tensor, index):
        parts = index if isinstance(index, tuple) else (index,)
        if any(torch.is_tensor(p) and p.dtype == torch.bool for p in parts):
            reads.append("boolean mask")
        return getitem(tensor, index)

    monkeypatch.setattr(torch.Tensor, "__getitem__", indexing)
    targets_, head, anchors, per_level = outputs
    batched_fcos_loss(model, targets_, head, anchors, per_level)
    assert reads == []
    # The check sees what torchvision's per-image loss does (.item(), boolean masks).
    model.compute_loss(targets_, head, anchors, per_level)
    monkeypatch.undo()
    assert "item" in reads and "boolean mask" in reads


def test_batched_evaluation_equals_per_image_on_a_split():
    from capstudy.engine.evaluate import predict_split, score_split

    split, _, _ = _real_batch()
    model = _model()
    model.score_thresh = 0.3  # images with fewer detections than the cap of 100 (padding)
    batched = predict_split(model, split, "detection", CPU, 8, batched=True)
    reference = predict_split(model, split, "detection", CPU, 8, batched=False)
    assert len(batched) == len(reference) == len(split.boxes)
    counts = [len(r["scores"]) for r in reference]
    assert sum(counts) > 0 and min(counts) < model.detections_per_img, counts
    for got, want in zip(batched, reference, strict=True):
        np.testing.assert_array_equal(got["scores"], want["scores"])
        np.testing.assert_allclose(got["boxes"], want["boxes"], rtol=1e-6, atol=1e-4)
        np.testing.assert_array_equal(got["labels"], want["labels"])
    assert score_split(batched, split, "detection") == score_split(reference, split, "detection")


def test_graphed_step_loss_with_fixed_slots_equals_the_eager_loss():
    """What the graph captures, run eagerly: padded to fixed slots, anchors made once."""
    _, images, targets = _real_batch()
    model = _model().train()
    optimizer = build_optimizer(model, make_tiny_config())
    step = GraphedStep(model, optimizer, CPU, batch_size=8, slots=40)
    step._prepare_static(images, targets)
    step._load(images, targets)
    eager = detection_loss(model, images, targets, CPU, batched=False)
    torch.testing.assert_close(step._loss(), eager, rtol=1e-5, atol=1e-5)
    # A batch that does not fit (smaller, or more boxes than slots) runs eagerly.
    assert not step.fits(images[:4], targets[:4])
    assert not GraphedStep(model, optimizer, CPU, 8, slots=0).fits(images, targets)


def test_cuda_graphs_leave_the_eager_step_on_a_cpu():
    model = _model().train()
    config = make_tiny_config(cuda_graphs=True)
    step = make_train_step(model, build_optimizer(model, config), CPU, config, slots=10)
    assert not isinstance(step, GraphedStep)
    _, images, targets = _real_batch()
    assert torch.isfinite(step(images, targets))


@pytest.mark.parametrize(
    ("key", "value"), [("val_eval", "sometimes"), ("cuda_graphs", "yes"), ("batched_fcos", 1)]
)
def test_bad_step_keys_are_named(key, value):
    with pytest.raises(ConfigError, match=key):
        TrialConfig.from_dict({key: value})
