"""The training engine: one trial, from config to trained model and per-epoch metrics.

No Ray and no MLflow imports anywhere in this package (a test parses them): the trial
reports through a callback. Public surface::

    from capstudy.engine import run_trial, TrialResult
    result = run_trial(config, report=lambda metrics, ckpt_dir: ..., checkpoint_dir=...)

Weights I/O (:mod:`capstudy.engine.weights`) documents the initialization file format and
which parts transfer for each initialization.
"""

from __future__ import annotations

from capstudy.engine.checkpoint import CHECKPOINT_NAME, load_checkpoint
from capstudy.engine.model import build_model, variant_of
from capstudy.engine.trial import Report, TrialResult, run_trial, seed_everything
from capstudy.engine.weights import load_init, read_weights, save_weights

__all__ = [
    "CHECKPOINT_NAME",
    "Report",
    "TrialResult",
    "build_model",
    "load_checkpoint",
    "load_init",
    "read_weights",
    "run_trial",
    "save_weights",
    "seed_everything",
    "variant_of",
]
