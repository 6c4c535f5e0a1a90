"""Quiet launches: capstudy prints its own progress and errors, not third-party start-up noise.

Each silenced message is named with its logger and the reason it does not matter to a
capstudy user; every other warning and error of those libraries still comes through.
:func:`quiet_store_setup` serves every command (the CLI's entry point calls it),
:func:`quiet_third_parties` the launch.
"""

from __future__ import annotations

import logging
import os

# (logger, start of the message, why it is noise for capstudy)
NOISE = (
    (
        "ray.tune.search.optuna.optuna_search",
        "You passed a `space` parameter to OptunaSearch that contained unresolved",
        "capstudy converts each cell's space itself (launch/searcher.py); the conversion "
        "Ray warns about is the intended one",
    ),
    (
        "ray._private.authentication.authentication_token_setup",
        "Token authentication is",
        "a local Ray started by capstudy listens on this machine only; clusters are set up "
        "as docs/guide/scaling-out.md says (RAY_AUTH_MODE=token)",
    ),
    (
        "ray.tune.tune",
        "Wrote the latest version of all result files",
        "Ray's storage is capstudy's resume state, not something a user reads",
    ),
    (
        "ray._private.worker",
        "Started a local Ray instance",
        "a launch without --address runs on this machine, as the launch guide says; the line "
        "carries a timestamp and a source file, not news",
    ),
    (
        "ray.tune.execution.tune_controller",
        "Restoring the run from the latest experiment state file",
        "`--resume` prints which study and parent run it resumes, in the study's terms",
    ),
)


# (logger, why its INFO lines are noise): raised to WARNING, so its warnings and errors stay.
INFO_NOISE = (
    (
        "mlflow.store.db.utils",
        "'Creating initial MLflow database tables...' and 'Updating database tables' each time "
        "a command creates a fresh SQLite store ($CAPSTUDY_HOME/mlflow.db); capstudy names "
        "the store itself where it matters",
    ),
    (
        "alembic.runtime.migration",
        "the schema migrations behind those lines ('Context impl SQLiteImpl', 'Running "
        "upgrade ...')",
    ),
)
# Below WARNING here, the user asked MLflow for its INFO or DEBUG lines: they are not hidden.
_MLFLOW_LEVEL = "MLFLOW_LOGGING_LEVEL"


def quiet_store_setup() -> None:
    """Hide the INFO lines of a new MLflow store's set-up (:data:`INFO_NOISE`), not its
    warnings or errors; unless ``MLFLOW_LOGGING_LEVEL`` asks for INFO or DEBUG."""
    level = logging.getLevelName(os.environ.get(_MLFLOW_LEVEL, "").upper() or "WARNING")
    if isinstance(level, int) and level < logging.WARNING:
        return
    for name, _ in INFO_NOISE:
        logging.getLogger(name).setLevel(logging.WARNING)


class _DropNoise(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_third_parties() -> None:
    """Install the filters (idempotent) and turn off Ray Tune's own console report.

    Ray Tune's report (an experiment box, "View detailed results here", a TensorBoard hint,
    a trial table) repeats what capstudy's live view shows in the study's terms; with
    ``RAY_AIR_NEW_OUTPUT=0`` and the driver's ``verbose=0`` Ray prints none of it.
    """
    for name in {n for n, _, _ in NOISE}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(tuple(p for n, p, _ in NOISE if n == name)))
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
