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
from cost_models.plan import InferenceWorkload, ParallelPlan, PlanError, check_positive
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch

InferenceMode = Literal["prefill", "decode"]
INFERENCE_PLAN_FIELDS: tuple[str, ...] = ("tp", "pp", "dp", "ep", "cp")
_MAX_BATCH = 1 << 24  # upper bound of the batch search (memory per sequence is > 0)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_inference_plan(arch: Architecture, system: System, plan: ParallelPlan) -> None:
    """Raise :class:`PlanError` (one line naming the field) if ``plan`` cannot serve ``arch``."""
    n = system.num_devices
    if plan.cp != 1:
        raise PlanError(f"cp: context parallelism is not modelled for inference; must be 1, got {plan.cp}")  # fmt: skip
    if plan.tp * plan.pp * plan.dp != n:
        raise PlanError(
            f"tp*pp*dp: must equal the device count {n}, got "
            f"{plan.tp}*{plan.pp}*{plan.dp} = {plan.tp * plan.pp * plan.dp}"
        )
    if arch.num_heads % plan.tp:
        raise PlanError(f"tp: must divide num_heads ({arch.num_heads}), got {plan.tp}")
    kvh = arch.num_kv_heads
    if arch.mla is None and kvh % plan.tp and plan.tp % kvh:
        raise PlanError(
            f"tp: must divide num_kv_heads ({kvh}) or be a multiple of it, got {plan.tp}"
        )
    if plan.pp > arch.num_layers:
        raise PlanError(f"pp: must be <= num_layers ({arch.num_layers}), got {plan.pp}")
    experts = arch.moe.num_experts if arch.moe is not None else 1
    if experts % plan.ep:
        raise PlanError(f"ep: must divide the number of experts ({experts}), got {plan.ep}")


def _check_fixed(fixed: Mapping[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in fixed.items():
        if name not in INFERENCE_PLAN_FIELDS:
            raise PlanError(
                f"{name}: not an inference plan field; inference takes "
                f"{', '.join(INFERENCE_PLAN_FIELDS)}"
            )
        out[name] = check_positive(name, value)
    return out


def candidate_plans(
    arch: Architecture, system: System, *, fixed: Mapping[str, object] | None = None
) -> list[ParallelPlan]:
    """Every feasible (tp, pp, dp, ep) on ``system.num_devices`` devices (see
    :func:`check_inference_plan`) that agrees with the ``fixed`` degrees; ``dp = devices /
    (tp * pp)`` replicas share the batch."""
    want = _check_fixed(fixed or {})
    n = system.num_devices
    experts = arch.moe.num_experts if arch.moe is not None else 1
    plans: list[ParallelPlan] = []
    for tp in _divisors(n):
        for pp in _divisors(n // tp):
            dp = n // (tp * pp)
            for ep in _divisors(tp * dp):
                if experts % ep:
                    continue
                plan = ParallelPlan(tp=tp, pp=pp, dp=dp, ep=ep, global_batch=dp)
                if any(getattr(plan, k) != v for k, v in want.items()):
                    continue
                try:
                    check_inference_plan(arch, system, plan)
                except PlanError:
                    continue
                plans.append(plan)
    if not plans and want:
        # name the violated rule: build the plan the fixed degrees imply and check it
        tp, pp = want.get("tp", 1), want.get("pp", 1)
        dp = want.get("dp", max(n // (tp * pp), 1))
        implied = ParallelPlan(tp=tp, pp=pp, dp=dp, ep=want.get("ep", 1), cp=want.get("cp", 1),
                               global_batch=dp)  # fmt: skip
        check_inference_plan(arch, system, implied)
    return plans


def evaluate_plans(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    plans: list[ParallelPlan],
    batch: npt.ArrayLike | None = None,
) -> InferenceArrays:
    """The inference arrays of ``arch`` under each of ``plans`` (``batch`` overrides the
    workload's batch, per plan)."""
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
    )


def choose_plan(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    *,
    mode: InferenceMode = "decode",
    fixed: Mapping[str, object] | None = None,
) -> ParallelPlan:
    """The fastest feasible plan that fits (by TTFT for ``prefill``, end-to-end latency for
    ``decode``) among those agreeing with ``fixed``; if none fits, the one with the least
    memory per device."""
    plans = candidate_plans(arch, system, fixed=fixed)
    if not plans:
        raise PlanError(
            f"plan: no (tp, pp, ep) on {system.num_devices} devices divides "
            f"num_heads={arch.num_heads}, num_kv_heads={arch.num_kv_heads}"
        )
    r = evaluate_plans(arch, system, workload, plans)
    time = r.ttft_s if mode == "prefill" else r.e2e_s
    if r.fits.any():
        best = int(np.argmin(np.where(r.fits, time, np.inf)))
    else:
        best = int(np.argmin(r.memory_per_device_bytes))
    return plans[best]


def max_batch_that_fits(
    arch: Architecture, system: System, workload: InferenceWorkload, plan: ParallelPlan
) -> int:
    """The largest batch (sequences of ``prompt_len + gen_len`` tokens) whose memory per
    device fits; 0 if not even one sequence fits. Memory is affine in the per-replica batch,
    so the bound is solved exactly and then checked."""
    check_inference_plan(arch, system, plan)
    probe = evaluate_plans(arch, system, workload, [plan, plan], batch=np.array([1, 2]) * plan.dp)
    m1, m2 = probe.memory_per_device_bytes
    cap = system.device.memory_bytes
    if m1 > cap:
        return 0
    slope = m2 - m1
    per_replica = _MAX_BATCH if slope <= 0 else int(min((cap - m1) // slope + 1, _MAX_BATCH))
    # guard against rounding: step down until it fits, and make sure one more does not
    trial = np.array([per_replica - 1, per_replica, per_replica + 1]) * plan.dp
    check = evaluate_plans(arch, system, workload, [plan] * 3, batch=np.maximum(trial, plan.dp))
    fits = check.fits
    if not fits[1]:
        per_replica -= 1
    elif fits[2] and per_replica < _MAX_BATCH:
        per_replica += 1
    return max(per_replica, 0) * plan.dp


__all__ = [
    "INFERENCE_PLAN_FIELDS",
    "InferenceMode",
    "candidate_plans",
    "check_inference_plan",
    "choose_plan",
    "evaluate_plans",
    "max_batch_that_fits",
]
