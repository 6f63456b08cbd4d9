"""Helpers shared by CLI modules: one-line errors and JSON output."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()


class UserError(Exception):
    """A mistake in what the user asked for; printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr (first line only) and exit 2."""
    line = message.strip().splitlines()[0] if message.strip() else "invalid input"
    typer.echo(f"error: {line}", err=True)
    sys.exit(2)


def check_out_file(out: Path | None, *, example: str) -> None:
    """``--out`` names a file to write: refuse a folder before any work is done."""
    if out is not None and out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file name such as {out / example}")


def os_error_line(exc: OSError) -> str:
    """``path: reason`` for an OSError that names a file (not ``[Errno 21] ...``)."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN and inf become null)."""
    typer.echo(json.dumps(_jsonable(obj), indent=2, sort_keys=False))
