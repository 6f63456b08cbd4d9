"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from nas.cli import main

NasRun = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def nas_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> NasRun:
    """Run the real entry point (``nas.cli.main``) in-process on ``args``; return
    (exit code, stdout, stderr). A wide terminal keeps rich tables on one line each."""

    def run(args: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["nas", *args])
        monkeypatch.setenv("COLUMNS", "250")
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run
