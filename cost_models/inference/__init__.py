"""Inference cost (prefill and decode), vectorised over candidates.

:mod:`~cost_models.inference.ops` (per-op roofline records), :mod:`~cost_models.inference.cost`
(TTFT, TPOT, KV cache and memory arrays), :mod:`~cost_models.inference.planner` (feasible
plans, the fastest that fits, the largest batch), :mod:`~cost_models.inference.report` (the
``nas estimate --mode prefill|decode`` object) and :mod:`~cost_models.inference.calibration`
(the one fitted parameter). Nothing here imports the training model.
"""

from __future__ import annotations

from cost_models.inference.planner import InferenceMode, choose_plan, max_batch_that_fits
from cost_models.inference.report import estimate_inference

__all__ = ["InferenceMode", "choose_plan", "estimate_inference", "max_batch_that_fits"]
