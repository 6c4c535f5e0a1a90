"""Per-epoch trial checkpoints, written atomically, and exact resumption.

``checkpoint_dir/checkpoint.pt`` holds (``torch.save`` of plain containers, loadable with
``weights_only=True``)::

    {"model", "optimizer", "scheduler", "scaler": state dicts,
     "rng": {"python", "numpy", "torch", "cuda"}, "epoch": completed epochs (1-based),
     "history": per-epoch metric dicts, "config": the TrialConfig dict,
     "config_hash": TrialConfig.config_hash()}

The file is written to a temporary name in the same folder and renamed over the old one
(``os.replace`` is atomic on POSIX), so a trial killed mid-write leaves the previous epoch's
checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capstudy.errors import CapstudyError
from capstudy.util import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states, as tensors/plain values."""
    np_state = np.random.get_state()
    return {
        "python": _python_state_to_tensor(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_python_state_from_tensor(state["python"]))
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npst["pos"], npst["has_gauss"], npst["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    # random.getstate() is (version, tuple of 625 ints, gauss); weights_only loading
    # accepts tensors and plain containers, so the ints travel as an int64 tensor.
    version, internal, gauss = state
    return {
        "version": version,
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": gauss,
    }


def _python_state_from_tensor(state: dict[str, Any]) -> tuple:
    return state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"]


def save_checkpoint(checkpoint_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus RNG states) to ``checkpoint_dir/checkpoint.pt`` atomically."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save({**payload, "rng": rng_state()}, tmp)
    return path


def load_checkpoint(resume_from: Path, config_hash: str) -> dict[str, Any]:
    """Read a checkpoint (a file, or a folder holding ``checkpoint.pt``) for ``config_hash``.

    Raises:
        CapstudyError: missing file, or a checkpoint of another config (resuming it would
            silently mix two experiments).
    """
    path = Path(resume_from)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CapstudyError(f"resume checkpoint {path} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("config_hash") != config_hash:
        raise CapstudyError(
            f"{path} was written by a trial with config hash {payload.get('config_hash')}, "
            f"not {config_hash}: resume with the same config, or start afresh"
        )
    return payload
