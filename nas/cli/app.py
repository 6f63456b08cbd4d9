"""The root Typer application that command modules attach to."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nas.cli._common import drop_unusable_terminal_width, env_columns, set_debug

drop_unusable_terminal_width()  # typer.rich_utils reads TERMINAL_WIDTH at its import
import typer.rich_utils  # noqa: E402

# Piped or redirected help is not cut at rich's 80 columns (flag names and stack names were
# truncated with "…"); 120 fits every command's help. COLUMNS / TERMINAL_WIDTH still set it
# (when they are positive whole numbers; other values are ignored).
HELP_PIPE_WIDTH = 120
if not sys.stdout.isatty() and env_columns() is None and typer.rich_utils.MAX_WIDTH is None:
    typer.rich_utils.MAX_WIDTH = HELP_PIPE_WIDTH

app = typer.Typer(
    name="nas",
    help="Hardware-aware architecture search for transformer and MoE language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from nas import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the installed version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the full Python traceback.")
    ] = False,
) -> None:
    """Hardware-aware architecture search for transformer and MoE language models."""
    set_debug(debug)


@app.command("version")
def version() -> None:
    """Print the installed version."""
    from nas import __version__

    typer.echo(__version__)
