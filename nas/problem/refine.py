"""Re-plan the best rows of an exhaustive grid with the full planner.

With ``plan: auto`` the grid costs every candidate with a small plan set
(:func:`nas.problem.grid_eval.plan_set`), because the per-candidate planner
(:func:`cost_models.train.planner.plan_training`: every tp, pp, dp, ep, cp, vpp, sequence
parallelism, micro-batch, ZeRO stage and recompute mode) is too slow for millions of
candidates. This step takes the feasible rows of the leading non-dominated layers of the
grid, at most ``limit`` of them, evaluates each again as the Optuna path does (full planner,
same accuracy evaluator) and writes the new metrics into the row. A re-planned row can only
get faster or fit where it did not. The front is then recomputed; rows the plan set ranked
below those layers are not re-planned, so the front is exact for the plan set and re-planned
where it matters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.problem.hardware import HardwarePoint
from nas.problem.record import Candidate
from nas.search.base import Objective, TrialFailed, TrialPruned
from nas.search.pareto import non_dominated, objective_matrix

if TYPE_CHECKING:
    import pandas as pd

    from search_spaces.spaces import SearchSpace

__all__ = ["leading_rows", "refine_rows"]


def leading_rows(judged: pd.DataFrame, *, objectives: Sequence[Objective], limit: int) -> list[int]:
    """Positions of the feasible rows in the first non-dominated layers, at most ``limit``."""
    values = objective_matrix(judged, objectives)
    left = np.flatnonzero(judged["feasible"].to_numpy(dtype=bool))
    chosen: list[int] = []
    while len(left) and len(chosen) < limit:
        layer = left[non_dominated(values[left])]
        chosen.extend(int(i) for i in layer[: limit - len(chosen)])
        left = np.setdiff1d(left, layer)
    return chosen


def _point_key(row: Any, scale_keys: list[str]) -> tuple[Any, ...]:
    return (row["system"], *(round(float(row[k]), 12) for k in scale_keys))


def refine_rows(
    frame: pd.DataFrame,
    rows: list[int],
    *,
    space: SearchSpace,
    points: Sequence[HardwarePoint],
    evaluate: Callable[[Candidate], dict[str, Any]],
) -> int:
    """Evaluate ``rows`` of ``frame`` again with ``evaluate`` (the full planner), in place;
    ``points`` are the grid's hardware points; returns how many rows were re-planned (a row
    whose evaluation fails keeps its grid values)."""
    scale_keys = sorted({k for p in points for k in p.scales})
    by_key = {
        (p.base_name, *(round(float(p.scales.get(k, 1.0)), 12) for k in scale_keys)): p
        for p in points
    }
    param_cols = [c for c in frame.columns if c.startswith("param_")]
    done = 0
    for i in rows:
        row = frame.iloc[i]
        params = {c.removeprefix("param_"): row[c].item() for c in param_cols}
        arch = space.to_architecture(params)
        point = by_key[_point_key(row, scale_keys)]
        try:
            record = evaluate(Candidate(arch=arch, hardware=point))
        except (TrialFailed, TrialPruned):
            continue
        for key, value in record.items():
            if key in frame.columns and not key.startswith("param_"):
                label = frame.index[i]
                frame.loc[label, key] = _as_grid_value(key, value, frame[key].dtype.kind)
        done += 1
    return done


def _as_grid_value(key: str, value: Any, kind: str) -> Any:
    """A trial-record value in the grid column's type (numpy ``kind``): the grid stores the
    recompute mode as its index in :data:`cost_models.plan.RECOMPUTE` and some booleans as
    0/1."""
    from cost_models.plan import RECOMPUTE

    if key == "plan_recompute" and isinstance(value, str):
        value = RECOMPUTE.index(value)
    if kind == "b":
        return bool(value)
    if kind in "fiu" and isinstance(value, (bool, int, float)):
        return float(value) if kind == "f" else int(value)
    return value
