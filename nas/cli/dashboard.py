"""``nas dashboard``: build the self-contained Pareto dashboard of one or more runs."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer

from nas.cli._common import UserError, check_out_file
from nas.cli.app import app


@app.command("dashboard")
def dashboard(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (several: compared).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file.",
            show_default="RUN_DIR/dashboard.html for one run, ./dashboard.html for several",
        ),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the file on 127.0.0.1 until Ctrl-C.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="Port for --serve (0 = any free port).")
    ] = 8000,
) -> None:
    """Build the Pareto dashboard: one HTML file that opens offline."""
    from nas.dashboard import build_dashboard, write_dashboard
    from nas.dashboard import serve as serve_file

    if not 0 <= port <= 65535:  # before the file is written, not after
        raise UserError(f"--port {port}: must be between 0 and 65535")
    if port != 8000 and not serve:
        raise UserError(f"--port {port}: only with --serve")
    check_out_file(out, example="dashboard.html")
    if len(run_dirs) == 1:
        path = write_dashboard(run_dirs[0], out)
    else:
        path = build_dashboard(run_dirs, out or Path("dashboard.html"))
    typer.echo(f"wrote {path}")
    if serve:
        try:
            serve_file(path, port=port, announce=typer.echo)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise UserError(f"--port {port}: already in use on 127.0.0.1; give another, or 0 for any free port") from None  # fmt: skip
