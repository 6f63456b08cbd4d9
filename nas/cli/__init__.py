"""The ``nas`` command line. It parses, builds and calls library functions; no logic here.

Each command group lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

from nas.cli._common import UserError, fail, os_error_line
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
    """Entry point of the ``nas`` console script: user mistakes exit 2 with one line."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # bad option value, missing argument, unknown option
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: print its help
            ctx = getattr(exc, "ctx", None)
            typer.echo(ctx.get_help() if ctx is not None else "")
            sys.exit(0)
        fail(exc.format_message().replace("Value error, ", ""))
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except OSError as exc:
        fail(os_error_line(exc))
    except _USER_ERRORS as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    # like click's standalone mode: always SystemExit (``ctx.exit(code)`` returns the code here)
    sys.exit(code if isinstance(code, int) else 0)
