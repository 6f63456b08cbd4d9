"""Run the ``nas`` command line in this process (no interpreter start-up per call)."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from unittest import mock


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def nas(*args: str) -> Result:
    """``nas ARGS`` through :func:`nas.cli.main`: its exit code, stdout and stderr."""
    from nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        mock.patch.object(sys, "argv", ["nas", *args]),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return Result(code=code if isinstance(code, int) else 1, out=out.getvalue(), err=err.getvalue())
