"""The one public entry point: ``estimate(arch, system, workload, plan=None, fixed=None)``
returns exactly the ``nas estimate --json`` object (``docs/design.md``, "Contracts").

Training goes to :mod:`cost_models.train.step` (with :mod:`cost_models.train.planner` choosing every
degree not in ``plan``/``fixed``); inference (prefill/decode) to
:func:`cost_models.inference.planner.estimate_inference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cost_models.options import ServeOptions, TrainOptions
from cost_models.plan import InferenceWorkload, Mode, ParallelPlan, PlanError, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.plans import PLAN_FIELDS, FixedValue, check_fixed
from cost_models.train.memory import MEMORY_KEYS
from cost_models.train.planner import PlanChoice, plan_training
from cost_models.train.step import TIME_KEYS, TrainCost, train_cost
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch

__all__ = ["MFU_CONVENTION", "estimate", "estimate_train", "plan_dict", "plan_fields"]

MFU_CONVENTION = (
    "MFU: model FLOPs = 3 x forward matmul FLOPs of the active parameters (LM head included) "
    "+ 3 x full (non-causal) attention, no recompute; HFU: FLOPs the hardware runs (causal "
    "flash attention, recompute); both against the dense bf16/fp16 peak"
)


def plan_fields(plan: ParallelPlan) -> dict[str, FixedValue]:
    """Every field of ``plan`` as a ``fixed`` mapping."""
    return {name: getattr(plan, name) for name in PLAN_FIELDS}


def plan_dict(plan: ParallelPlan) -> dict[str, Any]:
    out: dict[str, Any] = dict(plan_fields(plan))
    out["num_microbatches"] = plan.num_microbatches
    return out


def estimate_train(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    *,
    plan: ParallelPlan | None = None,
    fixed: Mapping[str, FixedValue] | None = None,
    options: TrainOptions | None = None,
    top_k: int = 5,
    memory_headroom: float = 1.0,
) -> dict[str, Any]:
    """The training ``--json`` object; degrees not in ``plan`` or ``fixed`` are planned among
    those within ``memory_headroom`` of device memory. Without ``options`` the default
    training stack's facts apply (``megatron-core``, as ``nas estimate``)."""
    if options is None:
        from cost_models.stacks import resolve_train

        options = resolve_train()[1]
    given = plan_fields(plan) if plan is not None else dict(fixed or {})
    if plan is not None and plan.num_devices != system.num_devices:
        raise PlanError(
            f"tp*pp*dp*cp: the degrees multiply to {plan.num_devices}, which must equal the "
            f"device count {system.num_devices}"
        )
    check_fixed(arch, system, workload, given)
    choice = plan_training(
        arch,
        system,
        workload,
        fixed=given,
        top_k=top_k,
        options=options,
        memory_headroom=memory_headroom,
    )
    best = choice.best
    cost = train_cost(
        ArchBatch.from_architectures([arch]),
        PlanBatch.from_plans([best]),
        system=system,
        workload=workload,
        options=options,
        keep_ops=True,
        memory_headroom=memory_headroom,
    )
    free = [k for k in plan_fields(best) if k not in given]
    report = _train_report(arch, system, workload, cost, choice, free)
    report["memory_headroom"] = memory_headroom
    return report


def _train_report(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    cost: TrainCost,
    choice: PlanChoice,
    free: list[str],
) -> dict[str, Any]:
    """The training ``--json`` object of the planner's ``choice``, costed as ``cost``."""
    best = choice.best
    return {
        "mode": "train",
        "model": arch.name,
        "system": system.name,
        "num_devices": system.num_devices,
        "step_time_s": float(cost.step_time_s[0]),
        "tokens_per_s": float(cost.tokens_per_s[0]),
        "tokens_per_s_per_device": float(cost.tokens_per_s_per_device[0]),
        "mfu": float(cost.mfu[0]),
        "hfu": float(cost.hfu[0]),
        "model_flops_per_token": float(cost.model_flops_per_token[0]),
        "hardware_flops_per_token": float(cost.hardware_flops_per_token[0]),
        "memory_per_device_bytes": float(cost.memory_per_device_bytes[0]),
        "device_memory_bytes": system.device.capacity_bytes,
        "fits": bool(cost.fits[0]),
        "plan": plan_dict(best),
        "workload": {
            "seq_len": workload.seq_len,
            "dtype": workload.dtype,
            "tokens_per_step": best.global_batch * workload.seq_len,
        },
        "time_breakdown_s": {k: float(cost.time_breakdown_s[k][0]) for k in TIME_KEYS},
        "memory_breakdown_bytes": {
            k: float(cost.memory_breakdown_bytes[k][0]) for k in MEMORY_KEYS
        },
        "ops_per_microbatch": [
            {
                "name": op.name,
                "kind": op.kind,
                "forward_flops": float(op.flops[0]),
                "forward_s": float(op.fwd_s[0]),
                "backward_s": float(op.bwd_s[0]),
            }
            for op in cost.ops
            if float(op.fwd_s[0]) > 0.0
        ],
        "planner": {
            "chosen": free,
            "candidates": choice.candidates,
            "fitting": choice.feasible_fitting,
            "top": [
                {"plan": plan_dict(p), "step_time_s": t, "fits": f, **d}
                for (p, t, f), d in zip(choice.top, choice.top_details, strict=True)
            ],
            "least_memory": {
                "plan": plan_dict(choice.least_memory[0]),
                "memory_per_device_bytes": choice.least_memory[1],
            },
        },
        "conventions": {"mfu": MFU_CONVENTION},
    }


def estimate(
    arch: Architecture,
    system: System,
    workload: TrainWorkload | InferenceWorkload,
    plan: ParallelPlan | None = None,
    fixed: Mapping[str, FixedValue] | None = None,
    *,
    mode: Mode | None = None,
    options: TrainOptions | None = None,
    serve: ServeOptions | None = None,
    memory_headroom: float = 1.0,
) -> dict[str, Any]:
    """The ``nas estimate --json`` object for ``workload`` on ``system`` (its device count).
    Plans (training and inference) fit when they need at most ``memory_headroom`` of device
    memory.

    ``mode`` defaults to ``train`` for a :class:`TrainWorkload` and ``decode`` for an
    :class:`InferenceWorkload`; ``fixed`` pins plan fields, the planner picks the rest.
    ``options`` are the training stack's facts, ``serve`` the serving engine's
    (:mod:`cost_models.stacks` resolves both from a stack name); left out, the default
    stacks' facts apply (``megatron-core`` and ``vllm``, as ``nas estimate``)."""
    if isinstance(workload, TrainWorkload):
        if mode not in (None, "train"):
            raise PlanError(f"mode: a training workload needs mode train, got {mode!r}")
        return estimate_train(
            arch,
            system,
            workload,
            plan=plan,
            fixed=fixed,
            options=options,
            memory_headroom=memory_headroom,
        )
    infer_mode = mode or "decode"
    if infer_mode == "train":
        raise PlanError("mode: an inference workload needs mode prefill or decode, got 'train'")
    from cost_models.inference.report import estimate_inference

    if serve is None:
        from cost_models.stacks import resolve_serve

        serve = resolve_serve()[1]
    return estimate_inference(
        arch,
        system,
        workload,
        plan,
        mode=infer_mode,
        fixed=fixed,
        serve=serve,
        memory_headroom=memory_headroom,
    )
