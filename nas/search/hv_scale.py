"""The scale a run's hypervolume is measured in, fixed before the search so it only grows.

Objectives are turned into minimisation (max negated) and normalised per objective to [0, 1]
between an ideal and a nadir value; the reference point is :data:`REFERENCE_MARGIN` (1.1) in
every normalised coordinate (the usual 10 % margin beyond the nadir, so the extreme points of
the front still contribute). With the scale and the reference fixed, a new trial can only add
volume, so the progress bar's hypervolume never goes down.

Where the scale comes from (``source``):

* ``space corners`` — every searched parameter at its low or high end (2^k candidates, e.g.
  32 for the quickstart, 224 with a hardware dimension), evaluated with the exhaustive
  backend's vectorised path; ideal and nadir are the best and worst objective values over
  those corners. Model size, loss, step time and memory are monotone in the size parameters,
  so the corners bracket most of the space; a trial beyond the nadir in some objective adds
  no volume until it improves there.
* ``first feasible trials`` — when the corners cannot be evaluated (a non-vectorised
  evaluator such as proxy training, or a space whose corners break its own rules), the
  best and worst of the first :data:`FREEZE_AFTER` feasible trials, then fixed (the summary
  takes them in trial-number order; with several workers the bar sees them in completion
  order, so the two can differ slightly).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nas.search.base import Objective
from nas.search.pareto import hypervolume, normalise, objective_matrix

__all__ = [
    "FREEZE_AFTER",
    "REFERENCE_MARGIN",
    "HypervolumeScale",
    "data_scale",
    "space_scale",
]

REFERENCE_MARGIN = 1.1  # reference point in normalised objective space (see module doc)
FREEZE_AFTER = 10  # feasible trials that fix the scale when the space corners cannot
_MAX_CORNERS = 4096

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class HypervolumeScale:
    """Ideal and nadir (minimisation values) of each objective, and where they came from."""

    ideal: FloatArray
    nadir: FloatArray
    source: str

    def hypervolume(self, values: FloatArray) -> float:
        """Normalised hypervolume of minimisation ``values`` (rows beyond the reference add
        nothing)."""
        ref = np.full(len(self.ideal), REFERENCE_MARGIN)
        return hypervolume(normalise(values, ideal=self.ideal, nadir=self.nadir), ref)

    def describe(self, objectives: Sequence[Objective]) -> dict[str, Any]:
        """The reference as summary.json stores it (values in the objectives' own sense)."""
        names = [o.metric for o in objectives]
        sign = np.array([-1.0 if o.direction == "max" else 1.0 for o in objectives])
        return {
            "normalised": [REFERENCE_MARGIN] * len(names),
            "ideal": dict(zip(names, (self.ideal * sign).tolist(), strict=True)),
            "nadir": dict(zip(names, (self.nadir * sign).tolist(), strict=True)),
            "source": self.source,
        }


def data_scale(values: FloatArray, *, source: str) -> HypervolumeScale | None:
    """Best and worst over the finite rows of minimisation ``values`` (None when none)."""
    finite = values[np.all(np.isfinite(values), axis=1)]
    if len(finite) == 0:
        return None
    return HypervolumeScale(ideal=finite.min(axis=0), nadir=finite.max(axis=0), source=source)


def space_scale(problem: Any, objectives: Sequence[Objective]) -> HypervolumeScale | None:
    """The scale from the corners of ``problem``'s space (see module doc); None when the
    problem has no vectorised grid evaluation or its corners cannot be evaluated."""
    space = getattr(problem, "space", None)
    evaluator = getattr(problem, "evaluator", None)
    if space is None or not getattr(evaluator, "vectorised", False):
        return None
    if not hasattr(problem, "evaluate_grid"):
        return None
    corners = {
        name: {"choices": sorted({p.min_value, p.max_value})}
        for name, p in space.searched().items()
    }
    try:
        corner_problem = copy.copy(problem)
        corner_problem.space = space.with_overrides(corners)
        frame = corner_problem.evaluate_grid(max_candidates=_MAX_CORNERS)
        values = objective_matrix(frame, objectives)
    except (ValueError, KeyError):  # corners that break the space's rules, a missing metric
        return None
    return data_scale(values, source="space corners")
