"""``nas hw``: list, show and profile hardware (devices and systems)."""

from __future__ import annotations

import typer

from nas.cli.app import app

hw_app = typer.Typer(
    help="Hardware profiles: list and show systems and devices, profile this machine.",
    no_args_is_help=True,
)
app.add_typer(hw_app, name="hw")
