"""Entry point of the ``capstudy`` command.

Each command group lives in its own module under ``capstudy.cli`` and exposes
``register(app)``. Command modules import heavy libraries (torch, ray, mlflow) inside the
command functions, so ``capstudy --help`` stays fast and ``capstudy analyze`` never pays
for torch.
"""

from __future__ import annotations

import importlib
import sys

import typer

from capstudy.errors import CapstudyError

# Order is the order of ``capstudy --help``.
COMMAND_MODULES = (
    "models",
    "data",
    "pretrain",
    "train",
    "launch",
    "power",
    "status",
    "analyze",
    "bench",
)


def build_app() -> typer.Typer:
    """Build the Typer application with every command group registered."""
    app = typer.Typer(
        name="capstudy",
        help="Capacity studies: how the benefit of pretraining changes as a backbone shrinks.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def root() -> None:
        """Capacity studies: how the benefit of pretraining changes as a backbone shrinks."""
        # A callback keeps ``capstudy`` a command group even while one command is registered.

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"capstudy.cli.{name}")
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (console-script entry point)."""
    from capstudy.launch.quiet import quiet_store_setup

    quiet_store_setup()
    app = build_app()
    try:
        app(args=argv if argv is not None else sys.argv[1:], prog_name="capstudy")
    except CapstudyError as exc:
        # Input errors name the file/key/value and the fix; a traceback would only hide that.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
