"""The exhaustive backend: evaluate every candidate of the space at once and return the
exact Pareto front.

The problem must be a :class:`nas.search.base.GridProblem`: ``evaluate_grid(max_candidates=...)
-> DataFrame`` (one row per candidate, ``param_*`` columns and every metric), computed with
the vectorised cost model and a vectorised accuracy evaluator, and ``replan`` (the leading
rows evaluated again more exactly; :mod:`nas.problem.refine` for an experiment). Spaces larger than ``search.max_candidates`` are refused
with their size. Grids above :data:`STORED_ROWS` rows are not stored whole: the run keeps
every feasible non-dominated candidate plus a seeded uniform sample, and the summary says
how many were evaluated.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from nas.search.base import (
    Backend,
    BackendUnavailable,
    GridProblem,
    Problem,
    ProgressFn,
    SearchJob,
    constraint_frame,
)
from nas.search.pareto import non_dominated, objective_matrix

__all__ = ["STORED_ROWS", "ExhaustiveBackend", "judge_grid"]

STORED_ROWS = 200_000
_JUDGED = ["number", "state", "feasible", "on_front"]  # judge_grid adds them again


def judge_grid(problem: Problem, frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``number``, ``state``, ``feasible``, ``fail_reason`` and ``on_front`` to a grid."""
    values = objective_matrix(frame, problem.objectives)
    finite = np.all(np.isfinite(values), axis=1)
    cons = constraint_frame(problem, frame)
    feasible = finite & (cons.to_numpy() <= 0).all(axis=1) if cons.shape[1] else finite
    front = np.zeros(len(frame), dtype=bool)
    idx = np.flatnonzero(feasible)
    front[idx[non_dominated(values[idx])]] = True
    out: pd.DataFrame = frame.copy()
    out.insert(0, "number", np.arange(len(frame)))
    out.insert(1, "state", np.where(finite, "COMPLETE", "FAIL"))
    out.insert(2, "feasible", feasible)
    given = out.pop("fail_reason").to_numpy() if "fail_reason" in out else None
    reason = np.where(finite, "", "objective is not finite")
    if given is not None:
        reason = np.where(given != "", given, reason)
    out.insert(3, "fail_reason", reason)
    out["on_front"] = front
    return out


class ExhaustiveBackend(Backend):
    """Evaluates the whole grid of a :class:`GridProblem` (see the module docstring)."""

    name = "exhaustive"

    def run(self, job: SearchJob, *, progress: ProgressFn | None = None) -> pd.DataFrame:
        problem = job.problem_factory()
        if not isinstance(problem, GridProblem):
            raise BackendUnavailable(
                "search.backend: exhaustive needs a problem with a vectorised grid evaluation"
            )
        start = time.perf_counter()
        frame = problem.evaluate_grid(max_candidates=job.settings.max_candidates)
        judged = judge_grid(problem, frame)
        replanned = problem.replan(judged, limit=job.settings.replan_rows)
        if replanned:
            judged = judge_grid(problem, judged.drop(columns=_JUDGED))
        elapsed = time.perf_counter() - start
        judged.insert(2, "duration_s", elapsed / max(len(judged), 1))
        judged.attrs["candidates_evaluated"] = len(judged)
        judged.attrs["grid_seconds"] = elapsed
        judged.attrs["replanned_rows"] = replanned
        if len(judged) > STORED_ROWS:
            rng = np.random.default_rng(job.settings.seed)
            keep = judged["on_front"].to_numpy().copy()
            keep[rng.choice(len(judged), STORED_ROWS, replace=False)] = True
            judged = judged[keep].reset_index(drop=True)
            judged.attrs["candidates_evaluated"] = len(frame)
            judged.attrs["grid_seconds"] = elapsed
            judged.attrs["replanned_rows"] = replanned
        return judged
