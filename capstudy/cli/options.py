"""Options several commands share, declared once so they read the same in every ``--help``."""

from __future__ import annotations

from typing import Annotated

import typer

# The environment variable is shown in --help; an explicit --tracking-uri wins over it.
TrackingUri = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI",
        show_envvar=True,
        help="MLflow tracking URI; default: the SQLite store $CAPSTUDY_HOME/mlflow.db "
        "($CAPSTUDY_HOME defaults to ~/.capstudy).",
    ),
]
