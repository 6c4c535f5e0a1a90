"""Per-epoch trial checkpoints, written atomically, and exact resumption.

``checkpoint_dir/checkpoint.pt`` holds (``torch.save`` of plain containers, loadable with
``weights_only=True``)::

    {"model", "optimizer", "scheduler", "scaler": state dicts,
     "rng": {"python", "numpy", "torch", "cuda"}, "epoch": completed epochs (1-based),
     "history": per-epoch metric dicts, "config": the TrialConfig dict,
     "config_hash": TrialConfig.config_hash()}

The file is written to a temporary name in the same folder and renamed over the old one
(``os.replace`` is atomic on POSIX), so a trial killed mid-write leaves the previous epoch's
checkpoint intact. Its sha256 is written beside it (``checkpoint.pt.sha256``), also atomically.
A copy of the folder can still be damaged on its way (Ray copying it to storage when the
driver is killed, a disk that fills up), so :func:`read_checkpoint` trusts a file only when it
matches its digest and loads safely: anything else raises :class:`DamagedCheckpoint` naming the
file, and the caller falls back to an older checkpoint or a fresh start.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capstudy.errors import CapstudyError, DamagedCheckpoint
from capstudy.util import atomic_path, atomic_write_text, file_sha256

CHECKPOINT_NAME = "checkpoint.pt"
DIGEST_SUFFIX = ".sha256"  # checkpoint.pt.sha256: the hex digest of checkpoint.pt


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


def digest_path(path: Path) -> Path:
    """Where the sha256 of checkpoint ``path`` is written."""
    return path.with_name(path.name + DIGEST_SUFFIX)


def save_checkpoint(checkpoint_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus RNG states) to ``checkpoint_dir/checkpoint.pt`` atomically.

    Its digest follows it. The old digest goes first, so a writer killed between the two
    renames leaves a checkpoint without a digest (read by a safe load), never one beside a
    digest of another epoch (which would be read as damaged).
    """
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save({**payload, "rng": rng_state()}, tmp)
        digest = file_sha256(tmp)
        digest_path(path).unlink(missing_ok=True)
    atomic_write_text(digest_path(path), digest + "\n")
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load checkpoint file ``path`` after checking it is whole.

    Raises:
        DamagedCheckpoint: the file is missing or empty, differs from the sha256 written
            beside it, or does not load (truncated, corrupted, not a checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise DamagedCheckpoint(f"checkpoint {path} is missing")
    size = path.stat().st_size
    if size == 0:
        raise DamagedCheckpoint(f"checkpoint {path} is empty (0 bytes)")
    expected = _recorded_digest(path)
    if expected is not None and file_sha256(path) != expected:
        raise DamagedCheckpoint(
            f"checkpoint {path} ({size} bytes) does not match the sha256 written beside it: "
            "it was truncated or corrupted after it was written"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ...: all mean the same here
        raise DamagedCheckpoint(
            f"checkpoint {path} ({size} bytes) cannot be loaded: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(payload, dict):
        raise DamagedCheckpoint(f"checkpoint {path} holds no trial state")
    return payload


def verify_checkpoint_folder(folder: Path) -> None:
    """Raise :class:`DamagedCheckpoint` unless ``folder/checkpoint.pt`` is whole."""
    read_checkpoint(Path(folder) / CHECKPOINT_NAME)


def _recorded_digest(path: Path) -> str | None:
    """The digest written beside ``path``; None when there is none (older checkpoints)."""
    try:
        text = digest_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def load_checkpoint(resume_from: Path, config_hash: str) -> dict[str, Any]:
    """Read a checkpoint (a file, or a folder holding ``checkpoint.pt``) for ``config_hash``.

    Raises:
        CapstudyError: missing file, or a checkpoint of another config (resuming it would
            silently mix two experiments).
        DamagedCheckpoint: the file is truncated or unreadable (see :func:`read_checkpoint`).
    """
    path = Path(resume_from)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CapstudyError(f"resume checkpoint {path} does not exist")
    try:
        payload = read_checkpoint(path)
    except DamagedCheckpoint as exc:
        raise DamagedCheckpoint(
            f"{exc}. Resume from an older checkpoint of the trial, or start it afresh"
        ) from None
    if payload.get("config_hash") != config_hash:
        raise CapstudyError(
            f"{path} was written by a trial with config hash {payload.get('config_hash')}, "
            f"not {config_hash}: resume with the same config, or start afresh"
        )
    return payload
