"""After a launch: CPU latency per image of every variant in the study, on its parent run.

One measurement per variant (label) at the study's input size, logged as
``latency/cpu_ms/<label>`` on the parent run, where ``capstudy analyze`` finds it for the
Pareto figure (``--capacity macs``).
"""

from __future__ import annotations

from collections.abc import Callable

from capstudy import keys, tracking
from capstudy.config import TrialConfig
from capstudy.study import StudySpec
from capstudy.study.cells import expand_cells

_MODEL_KEYS = (
    "family",
    "phi",
    "preset",
    "width",
    "depth",
    "resolution",
    "image_size",
    "head_width",
    "head_convs",
)


def variant_configs(spec: StudySpec) -> dict[str, TrialConfig]:
    """One trial config per variant label of the study (capacity and head keys only)."""
    from capstudy.engine import variant_of

    out: dict[str, TrialConfig] = {}
    for cell in expand_cells(spec):
        values = {**spec.fixed, **cell.values}
        kept = {k: values[k] for k in _MODEL_KEYS if k in values}
        config = TrialConfig.from_dict({**kept, "task": spec.task}, source=str(spec.source))
        out.setdefault(variant_of(config).label, config)
    return out


def log_latencies(
    spec: StudySpec, parent_run_id: str, uri: str, say: Callable[[str], None]
) -> dict[str, float]:
    """Measure and log every variant's CPU latency; returns {label: ms}."""
    from capstudy.engine.latency import cpu_latency_ms

    measured = {label: cpu_latency_ms(cfg) for label, cfg in variant_configs(spec).items()}
    metrics = {f"{keys.M_CPU_LATENCY_PREFIX}{label}": ms for label, ms in measured.items()}
    tracking.log_metrics(parent_run_id, metrics, 0, uri)
    shown = ", ".join(f"{label} {ms:.1f}" for label, ms in measured.items())
    say(f"CPU latency per image, batch 1, 1 thread (ms): {shown}")
    return measured
