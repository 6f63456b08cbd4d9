"""Accuracy evaluators: scaling-law prediction, real proxy training, fitted laws, zero-cost proxy.

Public API (see ``docs/accuracy.md``)::

    get_evaluator("scaling_law", {"law": "auto"}).evaluate_batch(batch, tokens=D)
    get_evaluator("proxy_train", {"steps": 200}).evaluate(arch, tokens=0)
    tokens_from_budget(budget_gpu_hours=5e4, tokens_per_s_per_device=tps)
"""

from __future__ import annotations

from nas.evaluators.base import (
    EvaluationFailed,
    Evaluator,
    EvaluatorError,
    Pruned,
    ReportFn,
    get_evaluator,
    list_evaluators,
    tokens_from_budget,
)

__all__ = [
    "EvaluationFailed",
    "Evaluator",
    "EvaluatorError",
    "Pruned",
    "ReportFn",
    "get_evaluator",
    "list_evaluators",
    "tokens_from_budget",
]
