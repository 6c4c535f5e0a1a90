"""run_trial: learning, reports, determinism, exact resume, domain checks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from enginefixtures import make_tiny_config, small_data  # noqa: F401  (small_data: fixture)

from capstudy import keys
from capstudy.engine import CHECKPOINT_NAME, run_trial
from capstudy.errors import CapstudyError


def _comparable(metrics: dict) -> dict:
    # Timings differ run to run; everything else must not.
    return {k: v for k, v in metrics.items() if not k.startswith("perf/")}


def test_detection_loss_falls_and_every_epoch_reports_all_keys():
    config = make_tiny_config(epochs=4, eval_domains=["synth_a/ir"])
    reports = []
    result = run_trial(config, lambda m, d: reports.append((m, d)))
    losses = [m[keys.M_TRAIN_LOSS] for m in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert [m[keys.M_EPOCH] for m, _ in reports] == [1.0, 2.0, 3.0, 4.0]
    metrics = reports[-1][0]
    for name in ("map", "map50"):
        # val/* is the carved subset of the training split, eval/* the published split: both
        # exist, and nothing ties one to the other (tests/engine/test_heldout.py).
        assert 0.0 <= metrics[keys.val_metric(name)] <= 1.0
        assert 0.0 <= metrics[keys.eval_metric("synth_a/rgb", name)] <= 1.0
        assert 0.0 <= metrics[keys.eval_metric("synth_a/ir", name)] <= 1.0
    assert keys.eval_metric("synth_a/ir", keys.class_ap("person")) in metrics
    for key in (keys.M_BACKBONE_PARAMS, keys.M_DETECTOR_PARAMS, keys.M_MACS):
        assert metrics[key] > 0
    assert metrics[keys.M_IMAGES_PER_S] > 0 and metrics[keys.M_EPOCH_TIME] > 0
    assert not result.model.training
    assert next(result.model.parameters()).device.type == "cpu"


def test_same_config_and_seed_give_identical_metrics():
    config = make_tiny_config(epochs=1)
    first, second = run_trial(config), run_trial(config)
    assert _comparable(first.metrics) == _comparable(second.metrics)
    other = run_trial(config.replace(seed=1))
    assert other.metrics[keys.M_TRAIN_LOSS] != first.metrics[keys.M_TRAIN_LOSS]


def test_resume_continues_exactly(tmp_path: Path):
    config = make_tiny_config(epochs=2)
    straight = run_trial(config)

    class Killed(Exception):
        pass

    def die_after_first_epoch(metrics, checkpoint_dir):
        raise Killed  # the checkpoint of epoch 1 is already on disk

    with pytest.raises(Killed):
        run_trial(config, die_after_first_epoch, checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temp file
    resumed = run_trial(config, checkpoint_dir=tmp_path, resume_from=tmp_path)
    assert len(resumed.history) == 2
    assert [_comparable(m) for m in resumed.history] == [_comparable(m) for m in straight.history]
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path: Path):
    run_trial(make_tiny_config(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(CapstudyError, match="config hash"):
        run_trial(make_tiny_config(epochs=1, lr=1e-3), resume_from=tmp_path / CHECKPOINT_NAME)


def test_classification_trial_reports_top1():
    config = make_tiny_config(
        task="classification",
        train_domain="synth_imagenet/rgb",
        epochs=1,
        batch_size=16,
        max_train_images=64,
        max_eval_images=32,
    )
    result = run_trial(config)
    assert 0.0 <= result.metrics[keys.val_metric("top1")] <= 1.0
    assert keys.eval_metric("synth_imagenet/rgb", "top1") in result.metrics


def test_domain_of_the_wrong_task_is_a_clear_error():
    with pytest.raises(CapstudyError, match="synth_imagenet/rgb.*task"):
        run_trial(make_tiny_config(eval_domains=["synth_imagenet/rgb"]))


def test_pretrained_init_without_weights_says_how_to_resolve_them():
    with pytest.raises(CapstudyError, match="resolve_init"):
        run_trial(make_tiny_config(init="imagenet"))


def test_engine_imports_neither_ray_nor_mlflow():
    root = Path(__file__).resolve().parents[2] / "capstudy" / "engine"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("ray", "mlflow"), f"{path.name} imports {name}"


def test_a_diverged_trial_reports_nan_once_and_stops(monkeypatch):
    import capstudy.engine.step as step_module  # the training step's loss lives there

    real_loss = step_module.detection_loss
    steps = []

    def loss_that_blows_up(*args, **kwargs):
        # Fault injection: the third step's loss is NaN, as after a too-large update.
        steps.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(steps) == 3 else loss

    monkeypatch.setattr(step_module, "detection_loss", loss_that_blows_up)
    reports = []
    config = make_tiny_config(epochs=3, eval_domains=["synth_a/ir"])
    result = run_trial(config, lambda m, d: reports.append((m, d)))
    assert result.diverged and len(reports) == 1
    metrics, checkpoint_dir = reports[0]
    assert metrics[keys.M_DIVERGED] == 1.0 and checkpoint_dir is None
    for key in (keys.M_TRAIN_LOSS, keys.val_metric("map50"), keys.eval_metric("synth_a/ir", "map")):
        assert metrics[key] != metrics[key], key  # NaN
    assert len(steps) == 4  # the epoch finished (32 images / 8), nothing ran after it


def test_training_steps_never_read_the_loss_or_batch_back(monkeypatch):
    """The host reads the running loss once per epoch, never per step (no per-step sync)."""
    import capstudy.engine.trial as trial_module

    reads = []
    recording = [True]
    for name in ("cpu", "item", "__float__", "__bool__", "tolist", "numpy"):
        original = getattr(torch.Tensor, name)

        def wrapped(tensor, *a, _name=name, _original=original, **k):
            batch_or_loss = tensor.grad_fn is not None or tensor.ndim >= 3
            if recording[0] and (batch_or_loss or _name in ("__float__", "cpu")):
                reads.append((_name, tuple(tensor.shape), tensor.grad_fn is not None))
            return _original(tensor, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    real_eval = trial_module.evaluate_splits

    def evaluate_unrecorded(*args, **kwargs):
        recording[0] = False
        try:
            return real_eval(*args, **kwargs)
        finally:
            recording[0] = True

    monkeypatch.setattr(trial_module, "evaluate_splits", evaluate_unrecorded)
    result = run_trial(make_tiny_config(epochs=2))
    monkeypatch.undo()
    assert not result.diverged
    # One float() of the 0-dim running total per epoch, nothing else.
    assert reads == [("__float__", (), False)] * 2
