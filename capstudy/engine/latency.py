"""CPU inference latency per image at batch 1: what embedded-vision users choose by.

Measured on this machine with one torch thread (an embedded CPU rarely offers more to one
model), in eval mode, end to end: a detector's forward includes box decoding and NMS.
The median of ``runs`` timed passes after ``warmup`` untimed ones; the median because a
busy machine produces outliers only upwards.
"""

from __future__ import annotations

import statistics
import time

import torch

from capstudy.config import TrialConfig
from capstudy.engine.model import build_model, variant_of

# Class count of the timed head: the default detection label set (person, car, bicycle);
# 10 for classifiers. The logits layer is a negligible share of the time either way.
DETECTION_CLASSES = 3
CLASSIFICATION_CLASSES = 10


def cpu_latency_ms(config: TrialConfig, warmup: int = 3, runs: int = 15) -> float:
    """Median milliseconds per image of the config's model on CPU, batch 1, one thread."""
    classes = DETECTION_CLASSES if config.task == "detection" else CLASSIFICATION_CLASSES
    model = build_model(config, variant_of(config), classes).eval()
    image = torch.rand(3, config.image_size, config.image_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        with torch.inference_mode():
            for k in range(warmup + runs):
                tic = time.perf_counter()
                if config.task == "detection":
                    model([image])
                else:
                    model(image[None])
                if k >= warmup:
                    times.append((time.perf_counter() - tic) * 1000)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)
