"""Helpers shared by CLI modules: one-line errors and JSON output."""

from __future__ import annotations

import json
import math
import sys
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
