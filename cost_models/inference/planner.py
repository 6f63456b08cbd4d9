"""Inference plans: which (tp, pp, dp, ep) can serve a model on a system, the fastest that
fits, and the largest batch that fits. The report built from the chosen plan is
:mod:`cost_models.inference.report`; the cost itself :mod:`cost_models.inference.cost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from cost_models.inference.cost import (
    InferenceArrays,
    inference_arrays,
)
from cost_models.options import ServeOptions
from cost_models.plan import InferenceWorkload, ParallelPlan, PlanError
from cost_models.plans import FixedValue, check_serve_plan, enumerate_plans
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch

__all__ = [
    "InferenceMode",
    "candidate_plans",
    "choose_plan",
    "evaluate_plans",
    "fits_within",
    "max_batch_that_fits",
]

InferenceMode = Literal["prefill", "decode"]
_MAX_BATCH = 1 << 24  # upper bound of the batch search (memory per sequence is > 0)


def candidate_plans(
    arch: Architecture, system: System, *, fixed: Mapping[str, FixedValue] | None = None
) -> list[ParallelPlan]:
    """The serving plans of :func:`cost_models.plans.enumerate_plans` as scalar plans."""
    batch = enumerate_plans(arch, system, InferenceWorkload(), fixed=fixed)
    return [batch.plan(i) for i in range(len(batch))]


def evaluate_plans(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    plans: list[ParallelPlan],
    batch: npt.ArrayLike | None = None,
    serve: ServeOptions | None = None,
) -> InferenceArrays:
    """The inference arrays of ``arch`` under each of ``plans`` (``batch`` overrides the
    workload's batch, per plan) with the serving engine ``serve``."""
    b = ArchBatch.from_architectures([arch]).take(np.zeros(len(plans), dtype=np.int64))

    def degree(name: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(p, name) for p in plans], dtype=np.float64)

    return inference_arrays(
        b,
        system,
        tp=degree("tp"),
        pp=degree("pp"),
        ep=degree("ep"),
        dp=degree("dp"),
        batch=workload.batch if batch is None else batch,
        prompt_len=workload.prompt_len,
        gen_len=workload.gen_len,
        weight_dtype=workload.weight_dtype,
        kv_dtype=workload.kv_dtype,
        serve=serve,
    )


def fits_within(
    r: InferenceArrays, system: System, memory_headroom: float = 1.0
) -> npt.NDArray[np.bool_]:
    """Plans whose memory per device is at most ``memory_headroom`` of device memory (1.0 =
    all of it; ``nas estimate`` and experiments use ``nas.explain.MEMORY_HEADROOM``)."""
    return np.asarray(
        r.memory_per_device_bytes <= memory_headroom * system.device.capacity_bytes, dtype=bool
    )


def choose_plan(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    *,
    mode: InferenceMode = "decode",
    fixed: Mapping[str, FixedValue] | None = None,
    serve: ServeOptions | None = None,
    memory_headroom: float = 1.0,
) -> ParallelPlan:
    """The fastest feasible plan that fits ``memory_headroom`` of device memory (by TTFT for
    ``prefill``, end-to-end latency for ``decode``) among those agreeing with ``fixed``; if
    none fits, the one with the least memory per device."""
    plans = candidate_plans(arch, system, fixed=fixed)
    if not plans:
        raise PlanError(
            f"plan: no (tp, pp, ep) on {system.num_devices} devices divides "
            f"num_heads={arch.num_heads}, num_kv_heads={arch.num_kv_heads}"
        )
    r = evaluate_plans(arch, system, workload, plans, serve=serve)
    time = r.ttft_s if mode == "prefill" else r.e2e_s
    fits = fits_within(r, system, memory_headroom)
    if fits.any():
        best = int(np.argmin(np.where(fits, time, np.inf)))
    else:
        best = int(np.argmin(r.memory_per_device_bytes))
    return plans[best]


def max_batch_that_fits(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    plan: ParallelPlan,
    serve: ServeOptions | None = None,
    memory_headroom: float = 1.0,
) -> int:
    """The largest batch (sequences of ``prompt_len + gen_len`` tokens) whose memory per
    device fits ``memory_headroom`` of device memory; 0 if not even one sequence fits.
    Memory grows with the per-replica batch (the KV cache) but is not affine in it under
    chunked prefill (the workspace stops growing at the chunk budget), so the bound is
    searched: powers of two first, then rounds of 64 evenly spaced batches between the last
    batch that fits and the first that does not."""
    check_serve_plan(arch, system, plan)

    def fitting(per_replica: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        r = evaluate_plans(arch, system, workload, [plan] * len(per_replica),
                           batch=per_replica * plan.dp, serve=serve)  # fmt: skip
        return fits_within(r, system, memory_headroom)

    grid = 1 << np.arange(_MAX_BATCH.bit_length(), dtype=np.int64)  # 1, 2, 4, ..., _MAX_BATCH
    while True:
        ok = fitting(grid)
        if not ok[0]:  # only in the first round: later rounds start at a batch that fits
            return 0
        failed = np.flatnonzero(~ok)
        if failed.size == 0:
            return int(grid[-1]) * plan.dp
        lo, hi = int(grid[failed[0] - 1]), int(grid[failed[0]])
        if hi - lo <= 1:
            return lo * plan.dp
        grid = np.unique(np.linspace(lo, hi, 65).astype(np.int64))
