"""Helpers shared by CLI modules: one-line errors and JSON output."""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from nas.jsonsafe import json_safe

# Piped or redirected output (``| cat``, ``> file``) is plain and as wide as a row needs, not
# cut at 80 columns; ``COLUMNS`` still sets a width. On a terminal rich sizes to the window.
_PIPE_WIDTH = 10_000


def env_columns() -> int | None:
    """``COLUMNS`` when it is a positive whole number; anything else is ignored."""
    return _env_width("COLUMNS")


def _env_width(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def drop_unusable_terminal_width() -> None:
    """Remove a ``TERMINAL_WIDTH`` that is not a positive whole number, as ``COLUMNS`` is
    ignored then: typer reads it with ``int()`` when ``typer.rich_utils`` is imported
    (``abc`` crashed ``nas --help`` with a traceback; ``0`` or ``-5`` printed no help)."""
    if "TERMINAL_WIDTH" in os.environ and _env_width("TERMINAL_WIDTH") is None:
        del os.environ["TERMINAL_WIDTH"]


console = (
    Console() if sys.stdout.isatty() else Console(width=env_columns() or _PIPE_WIDTH, no_color=True)
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class UserError(Exception):
    """A mistake in what the user asked for; printed as one line, exit code 2."""


def more_note(shown: int, total: int, *, what: str, flag: str) -> None:
    """``... N more <what> (--flag to see them)`` under a table cut at ``shown`` rows."""
    if total > shown:
        console.print(f"... {total - shown} more {what} ({flag} to see them)")


_STATE = {"debug": False}


def set_debug(on: bool) -> None:
    """``nas --debug``: errors show their traceback instead of one line."""
    _STATE["debug"] = on


def debug_enabled() -> bool:
    return _STATE["debug"]


def internal_error(exc: BaseException) -> NoReturn:
    """A bug, not a user mistake: say so in one line, exit 1 (``--debug`` for the traceback)."""
    what = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    typer.echo(
        f"internal error (a bug in nas, please report it with the command): {what}; "
        "rerun with nas --debug ... for the traceback",
        err=True,
    )
    sys.exit(1)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr (first line only) and exit 2."""
    line = message.strip().splitlines()[0] if message.strip() else "invalid input"
    typer.echo(f"error: {line}", err=True)
    sys.exit(2)


def unknown_option_line(exc: Exception) -> str:
    """``no such option: --bogus; see nas run --help`` for a parser's NoSuchOption, with the
    close options by name (``--trials`` for ``--trial``). click matched whole names, so the
    shared ``--`` made ``--out`` the suggestion for ``--bogus``."""
    name = str(getattr(exc, "option_name", "")) or "?"
    ctx = getattr(exc, "ctx", None)
    params = getattr(getattr(ctx, "command", None), "params", [])
    known = [o.lstrip("-") for p in params for o in (*p.opts, *p.secondary_opts) if o[:2] == "--"]
    close = difflib.get_close_matches(name.lstrip("-"), known, n=2) if name[:2] == "--" else []
    hint = f" (did you mean {' or '.join('--' + c for c in close)}?)" if close else ""
    path = getattr(ctx, "command_path", "") or "nas"
    return f"no such option: {name}{hint}; see {path} --help"


def check_out_file(out: Path | None, *, example: str) -> None:
    """``--out`` names a file to write: refuse a folder before any work is done."""
    if out is None:
        return
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file name such as {out / example}")
    blocking = next((p for p in out.parents if p.is_file()), None)
    if blocking is not None:
        raise UserError(f"--out {out}: {blocking} is a file, not a folder")


def os_error_line(exc: OSError) -> str:
    """``path: reason`` for an OSError that names a file (not ``[Errno 21] ...``)."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN and inf become null)."""
    typer.echo(json.dumps(json_safe(obj), indent=2, sort_keys=False))
