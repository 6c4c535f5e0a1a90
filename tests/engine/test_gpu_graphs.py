"""GPU-only: the CUDA-graph step trains like the eager step (skipped without CUDA).

Fifty steps of B-4 at 128 px under bfloat16 from the same weights and batches: the graphed
(fused, capturable AdamW) and eager loss curves agree within AMP tolerance, the graph is
captured once and replayed, and a last partial batch runs eagerly.
"""

from __future__ import annotations

import pytest
import torch
from enginefixtures import make_tiny_config

from capstudy.engine.device import Precision
from capstudy.engine.optim import build_optimizer
from capstudy.engine.step import GraphedStep, make_train_step
from capstudy.heads import build_detector
from capstudy.variants import make_variant

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")
STEPS, BATCH, SIZE = 50, 8, 128


def _batches():
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(4):
        images = torch.rand(BATCH, 3, SIZE, SIZE, generator=gen).to(CUDA)
        targets = []
        for i in range(BATCH):
            k = i % 4  # 0..3 boxes, one image without any
            xy = torch.rand(k, 2, generator=gen) * SIZE * 0.6
            wh = 8 + torch.rand(k, 2, generator=gen) * SIZE * 0.35
            boxes = torch.cat([xy, (xy + wh).clamp(max=SIZE)], dim=1)
            labels = torch.randint(1, 4, (k,), generator=gen)
            targets.append({"boxes": boxes.to(CUDA), "labels": labels.to(CUDA)})
        out.append((images.contiguous(memory_format=torch.channels_last), targets))
    return out


def _curve(graphs: bool) -> tuple[list[float], object]:
    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -4), 3, SIZE).to(CUDA).train()
    model.to(memory_format=torch.channels_last)
    config = make_tiny_config(
        phi=-4, image_size=SIZE, batch_size=BATCH, cuda_graphs=graphs, deterministic=False
    )
    precision = Precision(CUDA, torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False), True)
    step = make_train_step(model, build_optimizer(model, config), precision, config, slots=3)
    batches = _batches()
    losses = [step(*batches[i % len(batches)]) for i in range(STEPS)]
    images, targets = batches[0]
    losses.append(step(images[:5], targets[:5]))  # a last partial batch
    return [float(v) for v in losses], step


def test_graphed_step_follows_the_eager_loss_curve():
    eager, _ = _curve(graphs=False)
    graphed, step = _curve(graphs=True)
    assert isinstance(step, GraphedStep) and step.graph is not None
    assert step.eager_steps == 1  # only the partial batch
    assert all(torch.isfinite(torch.tensor(graphed)))
    assert graphed[-2] < 0.8 * graphed[0]  # it trains
    for a, b in zip(eager, graphed, strict=True):
        assert abs(a - b) <= 0.05 * abs(a) + 0.02, (eager, graphed)
