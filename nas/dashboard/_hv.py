"""Hypervolume after each trial (how the search converged), for minimisation values.

Only *records* can change the hypervolume: trials not dominated by any earlier trial. They
are found in one ordered pass that keeps the front so far (``moocore.is_nondominated`` on the
front plus the new trial), and the hypervolume is recomputed exactly at each record
(:func:`nas.search.pareto.hypervolume`, moocore's exact algorithms in any dimension), then
carried forward. 20,000 trials in 3 objectives: about 0.25 s for the records and 0.15 s for
the hypervolumes at them, measured on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import moocore
import numpy as np
import numpy.typing as npt

from nas.search.pareto import hypervolume

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class HypervolumeHistory:
    """``hv[i]``: exact hypervolume of trials ``0..i`` (in the given order)."""

    hv: FloatArray
    method: str = "exact"


def _fronts(values: FloatArray) -> tuple[IntArray, list[FloatArray]]:
    """Records (ascending) and the front right after each one; non-finite rows skipped."""
    front = np.empty((0, values.shape[1]))
    recs: list[int] = []
    fronts: list[FloatArray] = []
    for i in np.flatnonzero(np.all(np.isfinite(values), axis=1)):
        stacked = np.vstack([front, values[i]])
        keep = moocore.is_nondominated(stacked, keep_weakly=True)
        if keep[-1]:
            recs.append(int(i))
            front = stacked[keep]
            fronts.append(front)
    return np.asarray(recs, dtype=np.int64), fronts


def records(values: npt.ArrayLike) -> IntArray:
    """Indices (ascending) of rows not dominated by any earlier row; non-finite rows skipped."""
    return _fronts(np.array(values, dtype=np.float64, ndmin=2))[0]


def hypervolume_history(values: npt.ArrayLike, reference: npt.ArrayLike) -> HypervolumeHistory:
    """Hypervolume of the first i+1 rows of ``values`` (minimisation) for every i."""
    vals = np.array(values, dtype=np.float64, ndmin=2)
    ref = np.asarray(reference, dtype=np.float64)
    if vals.shape[1] != ref.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} objectives, values have {vals.shape[1]}")
    rec, fronts = _fronts(vals)
    hv = np.zeros(len(vals))
    for i, front in zip(rec, fronts, strict=True):
        hv[i] = hypervolume(front, ref)
    # the hypervolume only changes at records: carry each value forward
    at = np.zeros(len(vals), dtype=np.int64)
    at[rec] = rec
    np.maximum.accumulate(at, out=at)
    out = hv[at]
    if len(rec):
        out[: rec[0]] = 0.0
    return HypervolumeHistory(hv=out)


def reference_point(values: FloatArray, *, margin: float = 0.1) -> FloatArray:
    """Nadir of the finite rows pushed out by ``margin`` of the range (1.0 where flat)."""
    finite = values[np.all(np.isfinite(values), axis=1)]
    if len(finite) == 0:
        return np.ones(values.shape[1])
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return np.asarray(hi + margin * span, dtype=np.float64)
