"""Quiet launches: capstudy prints its own progress and errors, not third-party start-up noise.

Each silenced message is named with the reason it does not matter to a capstudy user; real
warnings and errors of those libraries still come through.
"""

from __future__ import annotations

import logging
import os
import warnings

# (logger, message fragment, why it is noise for capstudy)
NOISE = (
    (
        "ray.tune.search.optuna.optuna_search",
        "unresolved",
        "capstudy hands Optuna each cell's own space through its searcher, not Ray's config",
    ),
    (
        "ray.tune",
        "TensorBoard",
        "capstudy records to MLflow; Ray's TensorBoard hint does not apply",
    ),
    ("ray.tune", "tensorboardX", "same: no TensorBoard logging is wanted"),
    (
        "ray",
        "token",
        "a single-machine Ray needs no token auth; clusters are documented in the README",
    ),
)


class _DropNoise(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = tuple(f.lower() for f in fragments)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().lower()
        return not any(f in text for f in self.fragments)


def quiet_third_parties() -> None:
    """Install the filters (idempotent) and turn off Ray's hint-only features."""
    by_logger: dict[str, list[str]] = {}
    for name, fragment, _why in NOISE:
        by_logger.setdefault(name, []).append(fragment)
    for name, fragments in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(tuple(fragments)))
    # Ray's own loggers hand records to handlers directly; filters on handlers catch those.
    for handler in logging.getLogger("ray").handlers:
        handler.addFilter(_DropNoise(tuple(f for _, f, _ in NOISE)))
    warnings.filterwarnings("ignore", message=".*unresolved.*", module="ray.tune.search.optuna")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
