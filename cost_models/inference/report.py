"""Inference cost of one model on one system: prefill (TTFT), decode (TPOT), KV cache,
memory per device, the fastest plan that fits and the largest batch that fits.

The JSON object returned by :func:`estimate_inference` is the ``nas estimate --mode
prefill|decode`` contract of ``docs/design.md``: ``ttft_s``, ``tpot_s``, ``tokens_per_s``,
``kv_cache_bytes``, ``memory_per_device_bytes``, ``fits``, ``plan``, ``time_breakdown_s``,
``memory_breakdown_bytes``, plus ``e2e_s = ttft_s + (gen_len - 1) * tpot_s`` and both phase
breakdowns and ``prefill_chunks`` (engine iterations of the prefill). Conventions and
breakdown keys: :mod:`cost_models.inference.cost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from cost_models.inference.cost import compute_dtype
from cost_models.inference.planner import (
    InferenceMode,
    choose_plan,
    evaluate_plans,
    fits_within,
    max_batch_that_fits,
)
from cost_models.options import ServeOptions
from cost_models.plan import InferenceWorkload, ParallelPlan, PlanError
from cost_models.plans import FixedValue, check_serve_plan
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, kv_cache_bytes_per_token

__all__ = ["estimate_inference"]


def _floats(d: dict[str, npt.NDArray[np.float64]], i: int) -> dict[str, float]:
    return {k: float(v[i]) for k, v in d.items()}


def estimate_inference(
    arch: Architecture,
    system: System,
    workload: InferenceWorkload,
    plan: ParallelPlan | None = None,
    *,
    mode: InferenceMode = "decode",
    fixed: Mapping[str, FixedValue] | None = None,
    serve: ServeOptions | None = None,
    memory_headroom: float = 1.0,
) -> dict[str, Any]:
    """The ``nas estimate --mode prefill|decode`` JSON object (see the module docstring).
    ``fits``, the planner's choice and ``max_batch`` keep within ``memory_headroom`` of device
    memory.

    ``time_breakdown_s`` is the prefill breakdown (sums to ``ttft_s``) for ``mode="prefill"``
    and the decode-step breakdown (sums to ``tpot_s``) for ``mode="decode"``; both are also
    given as ``prefill_time_breakdown_s`` and ``decode_time_breakdown_s``. With ``plan=None``
    the fastest feasible plan that fits and agrees with the ``fixed`` degrees (any of
    ``tp, pp, dp, ep, cp``) is chosen (:func:`choose_plan`)."""
    if mode not in ("prefill", "decode"):
        raise PlanError(f"mode: must be prefill or decode for inference; got {mode!r}")
    if plan is None:
        plan = choose_plan(
            arch,
            system,
            workload,
            mode=mode,
            fixed=fixed,
            serve=serve,
            memory_headroom=memory_headroom,
        )
    check_serve_plan(arch, system, plan)
    engine = serve or ServeOptions()
    r = evaluate_plans(arch, system, workload, [plan], serve=engine)
    pre, dec = _floats(r.prefill_breakdown_s, 0), _floats(r.decode_breakdown_s, 0)
    b = ArchBatch.from_architectures([arch])
    return {
        "mode": mode,
        "model": arch.name,
        "system": system.name,
        "num_devices": system.num_devices,
        "ttft_s": float(r.ttft_s[0]),
        "tpot_s": float(r.tpot_s[0]),
        "e2e_s": float(r.e2e_s[0]),
        "tokens_per_s": float(r.tokens_per_s[0]),
        "prefill_tokens_per_s": workload.batch * workload.prompt_len / float(r.ttft_s[0]),
        # engine iterations of the prefill (chunked prefill, the stack's prefill_chunk_tokens)
        "prefill_chunks": int(r.prefill_chunks[0]),
        "decode_tokens_per_s": workload.batch / float(r.tpot_s[0]),
        "kv_cache_bytes": float(r.kv_cache_bytes[0]),
        "kv_cache_bytes_per_token": float(kv_cache_bytes_per_token(b, dtype=workload.kv_dtype)[0]),
        "memory_per_device_bytes": float(r.memory_per_device_bytes[0]),
        "device_memory_bytes": system.device.capacity_bytes,
        "memory_headroom": memory_headroom,
        "fits": bool(fits_within(r, system, memory_headroom)[0]),
        "max_batch": max_batch_that_fits(
            arch, system, workload, plan, serve=engine, memory_headroom=memory_headroom
        ),
        "plan": {"tp": plan.tp, "pp": plan.pp, "dp": plan.dp, "ep": plan.ep},
        "workload": {
            "batch": workload.batch,
            "prompt_len": workload.prompt_len,
            "gen_len": workload.gen_len,
            "weight_dtype": workload.weight_dtype,
            "kv_dtype": workload.kv_dtype,
            "compute_dtype": compute_dtype(workload.weight_dtype, system),
        },
        "time_breakdown_s": pre if mode == "prefill" else dec,
        "prefill_time_breakdown_s": pre,
        "decode_time_breakdown_s": dec,
        "memory_breakdown_bytes": _floats(r.memory_breakdown_bytes, 0),
        "framework_overhead_bytes": engine.overhead_bytes,
    }
