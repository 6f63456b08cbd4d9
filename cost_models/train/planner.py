"""Training plan search: evaluate every feasible plan (:func:`cost_models.plans.enumerate_plans`)
at once, keep the fastest that fits memory (and the top-k)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cost_models.options import TrainOptions
from cost_models.plan import (
    ParallelPlan,
    TrainWorkload,
)
from cost_models.plans import FixedValue, enumerate_plans
from cost_models.train.calibration import Calibration
from cost_models.train.step import TrainCost, train_cost
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch

__all__ = ["PlanChoice", "plan_training"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class PlanChoice:
    """The planner's answer: the chosen plan, the top-k (fastest first) and the counts."""

    best: ParallelPlan
    best_fits: bool
    top: list[tuple[ParallelPlan, float, bool]]  # (plan, step_time_s, fits)
    candidates: int
    feasible_fitting: int


def plan_training(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    *,
    fixed: Mapping[str, FixedValue] | None = None,
    top_k: int = 5,
    options: TrainOptions | None = None,
    calibration: Calibration | None = None,
) -> PlanChoice:
    """The fastest plan that fits memory (the fastest overall, flagged, if none fits)."""
    plans = enumerate_plans(arch, system, workload, fixed=fixed)
    batch = ArchBatch.from_architectures([arch]).take(np.zeros(len(plans), dtype=np.int64))
    cost: TrainCost = train_cost(
        batch, plans, system=system, workload=workload, options=options, calibration=calibration
    )
    t = cost.step_time_s
    fits = cost.fits
    key = np.where(fits, t, np.inf)
    order = np.argsort(key if fits.any() else t, kind="stable")[: max(top_k, 1)]
    top = [(plans.plan(int(i)), float(t[i]), bool(fits[i])) for i in order]
    return PlanChoice(
        best=top[0][0],
        best_fits=top[0][2],
        top=top,
        candidates=len(plans),
        feasible_fitting=int(fits.sum()),
    )
