"""Pareto fronts and hypervolume for minimisation (negate maximised objectives first), the one
implementation used by runs, benchmarks and the dashboard.

Dominance and hypervolume come from ``moocore`` (https://multi-objective.github.io/moocore/python/,
as its docstrings state): the non-dominated filter is the O(n log n) dimension sweep of Kung,
Luccio and Preparata (1975) for up to three objectives; the hypervolume is exact in any
dimension (O(n log n) in 2-D and 3-D with HV3D+, HV4D+ in 4-D, Guerreiro and Fonseca 2017;
recursive above). This module only adds what a trial table needs: NaN rows, max columns,
normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import moocore
import numpy as np
import numpy.typing as npt

__all__ = [
    "hypervolume",
    "non_dominated",
    "normalise",
    "objective_matrix",
    "to_minimisation",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def to_minimisation(values: npt.ArrayLike, directions: Sequence[str]) -> FloatArray:
    """Columns to minimise: ``max`` columns are negated."""
    arr = np.array(values, dtype=np.float64, ndmin=2)
    if arr.shape[1] != len(directions):
        raise ValueError(f"expected {len(directions)} objective columns, got {arr.shape[1]}")
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    out: FloatArray = arr * sign
    return out


def objective_matrix(frame: Any, objectives: Sequence[Any]) -> FloatArray:
    """The objective columns of a trial table (anything indexable by metric name, such as a
    DataFrame) as a matrix to minimise; ``objectives`` have ``metric`` and ``direction``."""
    cols = [np.asarray(frame[o.metric], dtype=np.float64) for o in objectives]
    return to_minimisation(np.column_stack(cols), [o.direction for o in objectives])


def non_dominated(values: npt.ArrayLike) -> BoolArray:
    """Mask of the non-dominated rows of ``values`` (minimisation). Rows with a NaN or an
    infinity are never on the front; identical rows on the front are all kept."""
    pts = np.array(values, dtype=np.float64, ndmin=2)
    mask = np.zeros(len(pts), dtype=bool)
    finite = np.all(np.isfinite(pts), axis=1)
    if finite.any():
        mask[finite] = moocore.is_nondominated(pts[finite], keep_weakly=True)
    return mask


def normalise(values: FloatArray, *, ideal: FloatArray, nadir: FloatArray) -> FloatArray:
    """Scale minimisation values so ``ideal`` -> 0 and ``nadir`` -> 1 per objective (a flat
    objective, ``nadir == ideal``, is only shifted)."""
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    out: FloatArray = (values - ideal) / span
    return out


def hypervolume(values: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """Exact hypervolume dominated by ``values`` (minimisation) and bounded by ``reference``.
    Rows not strictly better than the reference in every objective, or not finite, add
    nothing."""
    pts = np.array(values, dtype=np.float64, ndmin=2)
    ref = np.asarray(reference, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    if pts.shape[1] != ref.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} objectives, points have {pts.shape[1]}")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref))
