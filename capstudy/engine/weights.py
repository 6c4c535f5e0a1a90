"""Initialization weights: the file format and what transfers into a new model.

File format (``torch.save`` of a plain dict, loadable with ``weights_only=True``)::

    {"state_dict": {name: tensor},          # the whole trained model's state dict
     "meta": {"format": 1, "model": "classifier" | "detector",
              "family": ..., "phi": ..., "preset": ..., "width": ..., "depth": ...,
              "stage": "imagenet" | "coco" | ..., "num_classes": K, "class_names": [...],
              "image_size": ..., "head_width": ..., "head_convs": ..., ...}}

A trial checkpoint (``checkpoint.pt``, see :mod:`capstudy.engine.checkpoint`) is accepted
too, as a local-path initialization.

What transfers: every part the source and target models share, except the class-logits
layer, whose rows mean different classes in the source and the target:

* ``imagenet`` (a classifier) -> the trunk only into a detector (the detector's FPN starts
  from the trunk's stage outputs, so the classifier's ``conv_head`` has no place there);
  into a classifier -> the trunk and ``conv_head``;
* ``imagenet_coco`` (an FCOS detector) into a detector -> trunk, FPN, both head towers,
  box regression and centerness; the classification logits (``cls_logits``) start afresh,
  since COCO's classes are not the target's. Into a classifier -> the trunk only.

Everything that should transfer must match in name and shape; otherwise loading stops with
a :class:`CapstudyError` naming the file and the first mismatching tensors (weights of
another phi, another head width, ...). Nothing is skipped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.fcos import FCOS

from capstudy.errors import CapstudyError
from capstudy.heads import Classifier

WEIGHTS_FORMAT = 1
# Parameter-name prefixes of each model kind's trunk, and of the layers that never transfer.
_TRUNK_PREFIX = {"classifier": "body.", "detector": "backbone.body."}
_NEVER = ("head.classification_head.cls_logits.", "fc.")
_SHOWN = 5  # mismatches listed in an error message


def model_kind(model: nn.Module) -> str:
    """``detector`` or ``classifier``."""
    if isinstance(model, FCOS):
        return "detector"
    if isinstance(model, Classifier):
        return "classifier"
    raise TypeError(f"not a capstudy model: {type(model).__name__}")


def save_weights(model: nn.Module, path: Path, meta: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``meta`` in the format above (atomically).

    Tensors are moved to the CPU so the file loads anywhere.
    """
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        "meta": {"format": WEIGHTS_FORMAT, "model": model_kind(model), **meta},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and meta of a weights file or a trial checkpoint.

    Raises:
        CapstudyError: missing file, or not a capstudy weights/checkpoint file.
    """
    path = Path(path)
    if not path.is_file():
        raise CapstudyError(f"init weights file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors have many types; all mean "not ours"
        raise CapstudyError(f"{path} is not a loadable weights file: {exc}") from None
    if isinstance(payload, dict) and "state_dict" in payload:
        return payload["state_dict"], dict(payload.get("meta", {}))
    if isinstance(payload, dict) and "model" in payload and "config" in payload:
        task = payload["config"].get("task", "detection")
        meta = {"model": "detector" if task == "detection" else "classifier", "stage": "trial"}
        return payload["model"], meta
    raise CapstudyError(
        f"{path} is neither a capstudy weights file (with 'state_dict' and 'meta') nor a "
        "trial checkpoint.pt"
    )


def transfer_map(source_kind: str, target: nn.Module, source_keys) -> dict[str, str]:
    """Target name -> source name for every tensor that transfers (see module doc)."""
    target_kind = model_kind(target)
    src_trunk, dst_trunk = _TRUNK_PREFIX[source_kind], _TRUNK_PREFIX[target_kind]
    mapping = {}
    for key in target.state_dict():
        if key.startswith(_NEVER):
            continue
        if key.startswith(dst_trunk):
            mapping[key] = src_trunk + key[len(dst_trunk) :]
        elif source_kind == target_kind:
            mapping[key] = key  # FPN/head towers, or conv_head, share names within a kind
    return mapping


def load_init(model: nn.Module, path: Path) -> dict[str, Any]:
    """Load the transferable part of the weights in ``path`` into ``model`` (in place).

    Returns:
        The file's meta, plus ``transferred`` (how many tensors were copied).

    Raises:
        CapstudyError: the file is missing or unreadable, or tensors that should transfer
            are absent from it or have another shape (names the file and the first ones).
    """
    state, meta = read_weights(path)
    source_kind = meta.get("model")
    if source_kind not in _TRUNK_PREFIX:
        raise CapstudyError(f"{path}: meta 'model' must be 'classifier' or 'detector'")
    mapping = transfer_map(source_kind, model, state)
    target_state = model.state_dict()
    missing = [src for dst, src in mapping.items() if src not in state]
    # A deeper source trunk has blocks this model lacks: as much a mismatch as a missing one.
    used = set(mapping.values())
    src_trunk = _TRUNK_PREFIX[source_kind]
    missing += [f"{k} (not in model)" for k in state if k.startswith(src_trunk) and k not in used]
    wrong = [
        f"{src}: file {tuple(state[src].shape)} vs model {tuple(target_state[dst].shape)}"
        for dst, src in mapping.items()
        if src in state and state[src].shape != target_state[dst].shape
    ]
    if missing or wrong:
        made = ", ".join(
            f"{k}={meta[k]}" for k in ("family", "phi", "preset", "stage") if k in meta
        )
        problems = [f"shape {w}" for w in wrong[:_SHOWN]] + [
            f"missing {m}" for m in missing[:_SHOWN]
        ]
        raise CapstudyError(
            f"{path}: weights ({made or 'unknown variant'}) do not fit this model: "
            f"{len(wrong)} tensor(s) differ in shape and {len(missing)} are unmatched, e.g. "
            + "; ".join(problems)
            + ". Use weights made for this variant and head (capstudy pretrain ... --family F "
            "--phi P) or init=random."
        )
    with torch.no_grad():
        for dst, src in mapping.items():
            target_state[dst].copy_(state[src])
    return {**meta, "transferred": len(mapping)}
