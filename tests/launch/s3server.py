"""Names shared by the S3 fixtures (conftest) and the tests that use them."""

from __future__ import annotations

import socket

BUCKET = "capstudy"  # the one bucket of the moto server (fixture ``s3_endpoint``)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def study_text(name: str, cpu: float) -> str:
    """A six-trial study (two cells of three samples, 4 epochs) for scripted launches."""
    return f"""
study: {{name: {name}, task: detection, metric: val/map50, mode: max}}
fixed: {{epochs: 4}}
space:
  family: {{grid_search: [efficientnet_b0]}}
  phi: {{grid_search: [0, -7]}}
  init: {{grid_search: [random]}}
  train: {{grid_search: [synth_a/rgb]}}
  seed: {{grid_search: [0]}}
  lr: {{loguniform: [1.0e-4, 1.0e-1]}}
evaluate: [synth_a/rgb]
tune: {{samples_per_cell: 3, search: random, asha: {{grace: 1, reduction: 2, scope: cell}}}}
resources: {{cpu: {cpu}, gpu: 0}}
"""
