"""Rebuild a trial's trained model from its last Ray checkpoint (for MLflow model logging)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from capstudy.config import TrialConfig
from capstudy.engine import CHECKPOINT_NAME, build_model, variant_of
from capstudy.engine.checkpoint import read_checkpoint


def num_classes_of(config: TrialConfig, state: dict[str, torch.Tensor]) -> int:
    """Object/class count K from the trained weights' output layer."""
    if config.task == "detection":
        # torchvision's FCOS has K + 1 class slots (0 is background).
        return int(state["head.classification_head.cls_logits.weight"].shape[0]) - 1
    return int(state["fc.weight"].shape[0])


def model_from_checkpoint_dir(config: TrialConfig, folder: str | Path) -> nn.Module:
    """The model of ``config`` with the weights of ``folder/checkpoint.pt`` (CPU, eval).

    Raises:
        DamagedCheckpoint: the file is truncated or unreadable (the model is then not logged).
    """
    payload = read_checkpoint(Path(folder) / CHECKPOINT_NAME)
    state = payload["model"]
    model = build_model(config, variant_of(config), num_classes_of(config, state))
    model.load_state_dict(state)
    return model.eval()
