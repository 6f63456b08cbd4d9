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
        r.memory_per_device_bytes <= memory_headroom * system.device.memory_bytes, dtype=bool
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
    device fits ``memory_headroom`` of device memory; 0 if not even one sequence fits. Memory is affine in the per-replica batch,
    so the bound is solved exactly and then checked."""
    check_serve_plan(arch, system, plan)
    probe = evaluate_plans(
        arch, system, workload, [plan, plan], batch=np.array([1, 2]) * plan.dp, serve=serve
    )
    m1, m2 = probe.memory_per_device_bytes
    cap = memory_headroom * system.device.memory_bytes
    if m1 > cap:
        return 0
    slope = m2 - m1
    per_replica = _MAX_BATCH if slope <= 0 else int(min((cap - m1) // slope + 1, _MAX_BATCH))
    # guard against rounding: step down until it fits, and make sure one more does not
    trial = np.array([per_replica - 1, per_replica, per_replica + 1]) * plan.dp
    check = evaluate_plans(
        arch, system, workload, [plan] * 3, batch=np.maximum(trial, plan.dp), serve=serve
    )
    fits = fits_within(check, system, memory_headroom)
    if not fits[1]:
        per_replica -= 1
    elif fits[2] and per_replica < _MAX_BATCH:
        per_replica += 1
    return max(per_replica, 0) * plan.dp
