"""The root Typer application that command modules attach to."""

from __future__ import annotations

from typing import Annotated

import typer

from nas.cli._common import set_debug

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
