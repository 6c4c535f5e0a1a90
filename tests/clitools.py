"""Run the CLI in-process from tests (a module, not conftest: nested conftests shadow it)."""

from __future__ import annotations


def run_cli(args: list[str]) -> int:
    """Run ``capstudy ARGS`` in-process; return its exit status (click exits via SystemExit)."""
    from capstudy.cli.main import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
