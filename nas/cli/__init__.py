"""The ``nas`` command line. It parses, builds and calls library functions; no logic here.

Each command group lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from nas.cli._common import (
    UserError,
    debug_enabled,
    fail,
    internal_error,
    os_error_line,
    unknown_option_line,
)
from nas.cli.app import app

# Command groups: importing a module registers its commands on ``app``.
from nas.cli import accuracy as _accuracy  # noqa: F401  isort: skip
from nas.cli import dashboard as _dashboard  # noqa: F401  isort: skip
from nas.cli import estimate as _estimate  # noqa: F401  isort: skip
from nas.cli import hw as _hw  # noqa: F401  isort: skip
from nas.cli import hw_collective as _hw_collective  # noqa: F401  isort: skip
from nas.cli import models as _models  # noqa: F401  isort: skip
from nas.cli import run as _run  # noqa: F401  isort: skip
from nas.cli import submit as _submit  # noqa: F401  isort: skip
from nas.cli import validate as _validate  # noqa: F401  isort: skip

__all__ = ["app", "main"]


_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, UserError)


def main() -> None:
    """Entry point of the ``nas`` console script: user mistakes exit 2 with one line, bugs
    exit 1 with one line saying so; ``nas --debug ...`` shows the traceback of either."""
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        _report(exc)
    # like click's standalone mode: always SystemExit (``ctx.exit(code)`` returns the code here)
    sys.exit(code if isinstance(code, int) else 0)


def _report(exc: Exception) -> NoReturn:
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: print its help
        ctx = getattr(exc, "ctx", None)
        typer.echo(ctx.get_help() if ctx is not None else "")
        sys.exit(0)
    if isinstance(exc, typer.Abort):
        typer.echo("aborted", err=True)
        sys.exit(1)
    if debug_enabled():
        raise exc
    if type(exc).__name__ == "NoSuchOption":  # the parser's own suggestion misled
        fail(unknown_option_line(exc))
    if isinstance(exc, typer.TyperException):  # bad option value, missing argument, ...
        fail(exc.format_message().replace("Value error, ", ""))
    if isinstance(exc, OSError):
        fail(os_error_line(exc))
    if isinstance(exc, _USER_ERRORS):
        fail(str(exc))
    internal_error(exc)  # anything else is a bug in nas, not the user's mistake
