"""(params, tokens, loss) results for :mod:`nas.evaluators.fit_law`, read from a file.

Results files: CSV with a header, a JSON list of objects, ``{"rows": [...]}``, JSON lines or
concatenated objects (for example appended ``nas train-proxy --json`` outputs; failed runs
are skipped). Columns: ``params`` (or ``N``),
``tokens`` (or ``D``), ``loss``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nas.evaluators.base import EvaluatorError
from search_spaces.counts import FloatArray

__all__ = ["Results", "read_results"]


_ALIASES = {
    "params": ("params", "N", "n", "n_params"),
    "tokens": ("tokens", "D", "d"),
    "loss": ("loss", "val_loss"),
}


@dataclass(frozen=True, kw_only=True)
class Results:
    """Proxy results as arrays: ``params`` (parameter counts), ``tokens`` (training tokens)
    and ``loss`` (validation loss, nats/token), one entry per run."""

    params: FloatArray
    tokens: FloatArray
    loss: FloatArray

    def __post_init__(self) -> None:
        for name in ("params", "tokens", "loss"):
            v = getattr(self, name)
            if np.any(~np.isfinite(v)) or np.any(v <= 0):
                raise EvaluatorError(f"results.{name}: every value must be positive and finite")

    def __len__(self) -> int:
        return int(self.params.size)

    def take(self, mask: npt.NDArray[np.bool_]) -> Results:
        return Results(params=self.params[mask], tokens=self.tokens[mask], loss=self.loss[mask])


def _json_values(text: str, path: Path) -> list[Any]:
    """Every JSON value in ``text``: one document, JSON lines, or concatenated objects (for
    example several ``nas train-proxy --json`` outputs appended to one file)."""
    decoder, pos = json.JSONDecoder(), 0
    values: list[Any] = []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise EvaluatorError(f"{path}: malformed JSON (line {exc.lineno})") from None
        values.append(value)


def _rows_from_text(text: str, path: Path) -> list[Mapping[str, Any]]:
    if not text.lstrip().startswith(("[", "{")):
        return list(csv.DictReader(io.StringIO(text)))
    values = _json_values(text, path)
    if len(values) == 1 and isinstance(values[0], list):
        data = values[0]
    elif len(values) == 1 and isinstance(values[0], dict) and "rows" in values[0]:
        data = values[0]["rows"]
    else:
        data = values
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise EvaluatorError(f"{path}: JSON must hold objects, a list of them or {{'rows': [...]}}")
    # a failed proxy run ({"failed": true}) has no loss: skip it rather than fit it
    return [r for r in data if not r.get("failed")]


def _column(rows: list[Mapping[str, Any]], key: str, path: Path) -> FloatArray:
    for alias in _ALIASES[key]:
        if rows and all(alias in r for r in rows):
            try:
                return np.array([float(r[alias]) for r in rows], dtype=np.float64)
            except (TypeError, ValueError):
                raise EvaluatorError(f"{path}: column {alias!r} holds a non-number") from None
    raise EvaluatorError(
        f"{path}: every row needs a {key} column (one of {', '.join(_ALIASES[key])})"
    )


def read_results(path: str | Path) -> Results:
    """Read (params, tokens, loss) rows from a CSV or JSON results file."""
    p = Path(path)
    if not p.is_file():
        raise EvaluatorError(f"{p}: file not found")
    rows = _rows_from_text(p.read_text(), p)
    return Results(
        params=_column(rows, "params", p),
        tokens=_column(rows, "tokens", p),
        loss=_column(rows, "loss", p),
    )
