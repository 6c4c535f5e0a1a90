"""GPU-only checks (skipped without CUDA; ``scripts/gpu_check.sh`` runs them on a GPU).

AMP in bfloat16 and in float16 with a GradScaler gives finite losses equal to float32 within
tolerance; channels-last survives the loader and the detector; the loader path makes no
host-device synchronisation (``torch.cuda.set_sync_debug_mode("error")`` turns any into an
error); ``deterministic: true`` resumes exactly on the GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy.engine import CHECKPOINT_NAME, run_trial
from capstudy.engine.device import Precision
from capstudy.engine.model import detection_loss
from capstudy.heads import build_detector
from capstudy.variants import make_variant

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")


def _batch(size: int = 128, n: int = 4):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=gen).to(CUDA)
    boxes = torch.tensor([[8.0, 10.0, 60.0, 70.0], [30.0, 20.0, 100.0, 90.0]])
    targets = [{"boxes": boxes.to(CUDA), "labels": torch.tensor([1, 2]).to(CUDA)}] * n
    return images.contiguous(memory_format=torch.channels_last), targets


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_amp_losses_are_finite_and_match_float32(dtype):
    torch.manual_seed(0)
    model = build_detector(make_variant("efficientnet_b0", -4), 3, 128).to(CUDA).train()
    model.to(memory_format=torch.channels_last)
    images, targets = _batch()
    fp32 = Precision(CUDA, None, torch.amp.GradScaler("cuda", enabled=False), True)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    mixed = Precision(CUDA, dtype, scaler, True)
    with torch.no_grad():
        ref = detection_loss(model, images, targets, fp32)
        got = detection_loss(model, images, targets, mixed)
    assert torch.isfinite(got) and got.dtype == torch.float32
    assert abs(got.item() - ref.item()) < 0.05 * ref.item()
    loss = detection_loss(model, images, targets, mixed)
    mixed.scaler.scale(loss).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_loader_path_keeps_channels_last_and_never_syncs():
    from capstudy.data import BatchLoader, get_split

    split = get_split("synth_a/rgb", "train", 64)
    loader = BatchLoader(split, 8, shuffle=True, seed=0, device=CUDA, augment=True, prefetch=2)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = [(x, t) for x, t in loader]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    x, targets = batches[0]
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    assert targets[0]["boxes"].is_cuda
    assert sum(len(b[0]) for b in batches) == len(split)


def test_deterministic_gpu_trial_resumes_exactly(tmp_path: Path):
    config = make_tiny_config(epochs=2, device="cuda", deterministic=True)
    straight = run_trial(config)

    class Killed(Exception):
        pass

    def die(metrics, checkpoint_dir):
        raise Killed

    with pytest.raises(Killed):
        run_trial(config, die, checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    resumed = run_trial(config, checkpoint_dir=tmp_path, resume_from=tmp_path)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_packed_trial_memory_is_capped_and_freed():
    from capstudy.engine.device import claim_gpu, release_gpu

    claim_gpu(CUDA, 0.25)
    total = torch.cuda.get_device_properties(CUDA).total_memory
    with pytest.raises(torch.OutOfMemoryError):
        torch.empty(int(total * 0.3), dtype=torch.uint8, device=CUDA)
    block = 256 << 20
    held = torch.empty(block, dtype=torch.uint8, device=CUDA)
    del held
    assert torch.cuda.memory_reserved(CUDA) >= block  # freed, but still cached
    release_gpu(CUDA)
    assert torch.cuda.memory_reserved(CUDA) < block
    claim_gpu(CUDA, None)  # later tests in this process get the whole GPU back
