"""Facts the study recorder adds to a trial run: device time, weights lineage, error line.

Kept out of :mod:`capstudy.launch.recorder` so the recorder stays a thin callback; each
function takes Ray's trial (and result) and returns plain tags or metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capstudy import keys
from capstudy.status.causes import last_error_line

# Result keys the trainable adds so the driver can tag lineage (strings, not metrics).
INIT_MODEL = "_init_model"
INIT_VERSION = "_init_version"
INIT_RUN_ID = "_init_run_id"
_LINEAGE = {INIT_MODEL: keys.T_INIT_MODEL, INIT_VERSION: keys.T_INIT_VERSION}
_LINEAGE[INIT_RUN_ID] = keys.T_INIT_RUN_ID


def device_share(trial: Any) -> float:
    """How much of a device a trial holds: its GPU fraction, else its CPU count.

    A trial at ``gpu: 0.25`` costs a quarter of a GPU-second per second; a CPU trial costs
    its cores (so CPU studies are priced in core-seconds).
    """
    try:
        need = trial.placement_group_factory.required_resources
    except AttributeError:  # a trial without resources (tests): one device
        return 1.0
    gpu = float(need.get("GPU", 0) or 0)
    return gpu if gpu > 0 else float(need.get("CPU", 1) or 1)


def cost_metrics(trial: Any, result: dict) -> dict[str, float]:
    """``cost/device_seconds``: Ray's total trial time (restores included) times its share."""
    seconds = result.get("time_total_s")
    if not isinstance(seconds, int | float):
        return {}
    return {keys.M_DEVICE_SECONDS: float(seconds) * device_share(trial)}


def lineage_tags(result: dict) -> dict[str, str]:
    """Registered weights a trial loaded (name, version, producing run), when it reported them."""
    return {tag: str(result[k]) for k, tag in _LINEAGE.items() if result.get(k)}


def lineage_report(ref: Any) -> dict[str, str]:
    """The extra result keys a trainable reports for a :class:`~capstudy.registry.WeightsRef`."""
    if ref is None:
        return {}
    return {INIT_MODEL: ref.name, INIT_VERSION: str(ref.version), INIT_RUN_ID: ref.run_id or ""}


def error_tags(trial: Any) -> dict[str, str]:
    """The last line of a failed trial's error (Ray's ``error.txt``), for ``capstudy status``."""
    path = getattr(trial, "error_file", None)
    if not path:
        local = getattr(trial, "local_path", None)
        path = Path(local) / "error.txt" if local else None
    line = last_error_line(Path(path)) if path else ""
    return {keys.T_ERROR: line} if line else {}
