"""The scripts under ``bench/`` imported as modules, for the tests that check them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "bench"


def import_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (bench scripts import their siblings by name)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
