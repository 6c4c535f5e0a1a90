"""mkdocs hook: the CLI reference, generated from the Typer app at build time.

A page holding the marker ``<!-- cli-reference -->`` gets, in its place, every command of
``capstudy`` (groups and their subcommands in ``--help`` order): its help text, usage line and
a table of its arguments and options as ``--help`` states them (defaults, environment
variables). Nothing is written by hand, so the page cannot drift from the code.
"""

from __future__ import annotations

import inspect

import click
import typer

MARKER = "<!-- cli-reference -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _params_table(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if isinstance(param, click.Argument):
            record = (param.make_metavar(ctx), "argument")
        if record is None:
            continue
        names, help_text = record
        rows.append(f"| `{_cell(names)}` | {_cell(help_text)} |")
    if not rows:
        return []
    return ["| option | meaning |", "| --- | --- |", *rows, ""]


def _command_doc(command: click.Command, path: list[str], parent: click.Context | None):
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    lines = [f"{'#' * min(len(path), 4)} `{' '.join(path)}`", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help).replace("\b\n", ""), ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```text", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    lines += _params_table(command, ctx)
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _command_doc(sub, [*path, name], ctx)
    return lines


def cli_reference() -> str:
    """The reference of every ``capstudy`` command, as Markdown."""
    from capstudy.cli.main import build_app

    root = typer.main.get_command(build_app())
    ctx = click.Context(root, info_name="capstudy")
    lines = []
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is not None and not command.hidden:
            lines += _command_doc(command, ["capstudy", name], ctx)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace the marker with the generated reference."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
