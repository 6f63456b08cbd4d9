"""Analytical cost of training and inference under parallelism.

Public API (see ``docs/design.md``): :func:`estimate` returns the ``nas estimate --json`` object;
:func:`train_cost` is the vectorised training model over (architecture, plan) arrays;
:func:`plan_training` the planner; :func:`collective_time_s` the collectives model.
"""

from __future__ import annotations

from cost_models.estimate import estimate, estimate_train
from cost_models.network.collectives import collective_time_s
from cost_models.options import TrainOptions
from cost_models.plan import InferenceWorkload, ParallelPlan, PlanError, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.plans import enumerate_plans
from cost_models.train.planner import PlanChoice, plan_training
from cost_models.train.step import TIME_KEYS, TrainCost, train_cost

__all__ = [
    "TIME_KEYS",
    "InferenceWorkload",
    "ParallelPlan",
    "PlanBatch",
    "PlanChoice",
    "PlanError",
    "TrainCost",
    "TrainOptions",
    "TrainWorkload",
    "collective_time_s",
    "enumerate_plans",
    "estimate",
    "estimate_train",
    "plan_training",
    "train_cost",
]
