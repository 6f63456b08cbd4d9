"""Training cost, vectorised over (architecture, plan) pairs.

Modules, in the order an estimate runs through them: :mod:`~cost_models.train.ops` (GEMM and
attention records of one micro-batch), :mod:`~cost_models.train.memory_ops` (memory-bound
records), :mod:`~cost_models.train.recompute` (what selective recompute re-runs),
:mod:`~cost_models.train.comm` (TP/CP/EP/PP communication and what overlaps),
:mod:`~cost_models.train.dp_comm` (DP/ZeRO/FSDP communication and what overlaps),
:mod:`~cost_models.train.memory` (memory per device), :mod:`~cost_models.train.step` (step
time, throughput, MFU), :mod:`~cost_models.train.planner` (the fastest plan that fits) and
:mod:`~cost_models.train.calibration` (the fitted device and overlap efficiencies).
"""

from __future__ import annotations

from cost_models.plans import enumerate_plans
from cost_models.train.planner import PlanChoice, plan_training
from cost_models.train.step import TIME_KEYS, TrainCost, train_cost

__all__ = ["TIME_KEYS", "PlanChoice", "TrainCost", "enumerate_plans", "plan_training", "train_cost"]
