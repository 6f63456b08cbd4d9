"""Pareto fronts and hypervolume, for minimisation (negate maximised objectives first).

``non_dominated`` scales to millions of points: after a lexicographic sort no later point can
dominate an earlier one, so the front is built in one pass over chunks, each chunk tested
against the front so far with numpy broadcasting.

Hypervolume is exact: a sweep in 2-D and slicing along the last objective (the "HSO" scheme,
While et al. 2006, IEEE TEC 10(1)) above that; fine for fronts of a few thousand points in
2-3 objectives, which is what search fronts are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

_CHUNK = 2048


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


def _dominated_by(front: FloatArray, points: FloatArray) -> BoolArray:
    """For each point: is it dominated by some row of ``front``? (weakly <= all, < one)"""
    if len(front) == 0:
        return np.zeros(len(points), dtype=bool)
    le = np.all(front[None, :, :] <= points[:, None, :], axis=2)
    lt = np.any(front[None, :, :] < points[:, None, :], axis=2)
    out: BoolArray = np.any(le & lt, axis=1)
    return out


def non_dominated(values: npt.ArrayLike) -> BoolArray:
    """Mask of the non-dominated rows of ``values`` (minimisation; NaN rows are dominated)."""
    pts = np.array(values, dtype=np.float64, ndmin=2)
    n = len(pts)
    mask = np.zeros(n, dtype=bool)
    finite = np.all(np.isfinite(pts), axis=1)
    idx = np.flatnonzero(finite)
    if len(idx) == 0:
        return mask
    # Identical rows share one verdict; np.unique also sorts rows lexicographically.
    uniq, inverse = np.unique(pts[idx], axis=0, return_inverse=True)
    keep = np.zeros(len(uniq), dtype=bool)
    if pts.shape[1] == 2:
        # Sorted by f0 then f1: a row is on the front iff its f1 beats every earlier f1.
        prev_min = np.minimum.accumulate(np.concatenate([[np.inf], uniq[:-1, 1]]))
        keep = uniq[:, 1] < prev_min
    else:
        front = np.empty((0, pts.shape[1]))
        for start in range(0, len(uniq), _CHUNK):
            chunk = uniq[start : start + _CHUNK]
            alive = np.flatnonzero(~_dominated_by(front, chunk))
            survivors = chunk[alive]
            # within the sorted chunk only earlier rows can dominate later ones
            local = alive[~_dominated_by(survivors, survivors)]
            keep[start + local] = True
            front = np.concatenate([front, chunk[local]])
    mask[idx] = keep[np.asarray(inverse).reshape(-1)]
    return mask


def normalise(values: FloatArray, *, ideal: FloatArray, nadir: FloatArray) -> FloatArray:
    """Scale minimisation values so ``ideal`` -> 0 and ``nadir`` -> 1 per objective."""
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (values - ideal) / span


def _hv2(points: FloatArray, ref: FloatArray) -> float:
    pts = points[np.lexsort((points[:, 1], points[:, 0]))]
    total, best_y = 0.0, float(ref[1])
    for x, y in pts:
        if y < best_y:
            total += (ref[0] - x) * (best_y - y)
            best_y = float(y)
    return total


def _hv(points: FloatArray, ref: FloatArray) -> float:
    if len(points) == 0:
        return 0.0
    d = points.shape[1]
    if d == 1:
        return float(ref[0] - points[:, 0].min())
    if d == 2:
        return _hv2(points, ref)
    pts = points[np.argsort(points[:, -1])]
    total = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = upper - pts[i, -1]
        if depth <= 0:
            continue
        slab = pts[: i + 1, :-1]
        slab = slab[non_dominated(slab)]
        total += depth * _hv(slab, ref[:-1])
    return total


def hypervolume(values: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """Exact hypervolume dominated by ``values`` (minimisation) and bounded by ``reference``.
    Points not strictly better than the reference in every objective add nothing."""
    pts = np.array(values, dtype=np.float64, ndmin=2)
    ref = np.asarray(reference, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    if pts.shape[1] != ref.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} objectives, points have {pts.shape[1]}")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return _hv(pts[non_dominated(pts)], ref)
