"""Fit and hold-out check of the one calibrated inference parameter.

:data:`~cost_models.inference.ops.INFERENCE_GEMM_DERATE` scales every GEMM's efficiency
(an op-class parameter, never a row's). It is chosen on a grid by least squares in
``log(predicted / measured)`` over the measurement rows; :func:`leave_one_out` refits it
without each row in turn and reports that row's error, the honest estimate of the error on
data the fit has not seen (``docs/validation/inference.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cost_models.validation.inference import (
    Measurement,
    load_measurements,
    predict,
    publication,
)

__all__ = ["DERATE_GRID", "LeaveOneOut", "leave_one_out", "leave_one_source_out"]

FloatArray = npt.NDArray[np.float64]
DERATE_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.60, 1.0001, 0.02), 2))


@dataclass(frozen=True, kw_only=True)
class LeaveOneOut:
    """Held-out result of the calibration."""

    ids: tuple[str, ...]
    metrics: tuple[str, ...]
    fitted: tuple[float, ...]  # the factor fitted without each row
    errors: tuple[float, ...]  # that row's relative error at its held-out factor
    all_rows_fit: float

    @property
    def median_abs_error(self) -> float:
        return float(np.median(np.abs(self.errors)))

    @property
    def worst_abs_error(self) -> float:
        return float(np.max(np.abs(self.errors)))

    def median_for(self, metrics: tuple[str, ...]) -> float:
        picked = [abs(e) for e, m in zip(self.errors, self.metrics, strict=True) if m in metrics]
        return float(np.median(picked)) if picked else float("nan")


def _prediction_table(
    rows: list[Measurement], grid: tuple[float, ...]
) -> tuple[FloatArray, FloatArray]:
    """Predictions of every row at every grid value (grid x rows) and the measurements."""
    table = np.array([[predict(m, gemm_derate=g) for m in rows] for g in grid])
    measured = np.array([m.measured_s for m in rows])
    return table, measured


def _fit(log_ratio: FloatArray, use: npt.NDArray[np.bool_]) -> int:
    """Index of the grid value with the least mean squared log error over the ``use`` rows."""
    return int(np.argmin(np.mean(log_ratio[:, use] ** 2, axis=1)))


def _leave_groups_out(
    rows: list[Measurement], grid: tuple[float, ...], groups: list[str]
) -> LeaveOneOut:
    """Refit without every row of each group in turn and report those rows' errors."""
    table, measured = _prediction_table(rows, grid)
    log_ratio = np.log(table / measured)
    fitted = [0.0] * len(rows)
    errors = [0.0] * len(rows)
    for group in sorted(set(groups)):
        held = np.array([g == group for g in groups])
        g = _fit(log_ratio, ~held)
        for i in np.flatnonzero(held):
            fitted[int(i)] = grid[g]
            errors[int(i)] = float(table[g, i] / measured[i] - 1.0)
    best = _fit(log_ratio, np.ones(len(rows), dtype=bool))
    return LeaveOneOut(
        ids=tuple(m.id for m in rows),
        metrics=tuple(m.metric for m in rows),
        fitted=tuple(fitted),
        errors=tuple(errors),
        all_rows_fit=grid[best],
    )


def leave_one_out(
    rows: list[Measurement] | None = None, grid: tuple[float, ...] = DERATE_GRID
) -> LeaveOneOut:
    """Refit without each row and report the held-out row's error."""
    rows = load_measurements() if rows is None else rows
    return _leave_groups_out(rows, grid, [str(i) for i in range(len(rows))])


def leave_one_source_out(
    rows: list[Measurement] | None = None, grid: tuple[float, ...] = DERATE_GRID
) -> LeaveOneOut:
    """Refit without every row of each publication in turn and report those rows' errors
    (rows of one publication share their setup, so leave-one-out would still have seen it)."""
    rows = load_measurements() if rows is None else rows
    return _leave_groups_out(rows, grid, [publication(m.source) for m in rows])
