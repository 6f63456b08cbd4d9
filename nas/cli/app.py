"""The root Typer application that command modules attach to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="nas",
    help="Hardware-aware architecture search for transformer and MoE language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Hardware-aware architecture search for transformer and MoE language models."""


@app.command("version")
def version() -> None:
    """Print the installed version."""
    from nas import __version__

    typer.echo(__version__)
