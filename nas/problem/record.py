"""From a candidate to one flat trial record: architecture, hardware, cost and accuracy.

The record is a flat ``{name: number | str | bool}`` mapping; objectives and constraints
name its keys and nothing is special-cased. Nested parts of the cost report are flattened
(:func:`flatten_report`): ``time_breakdown_s.compute`` -> ``time_compute_s``,
``memory_breakdown_bytes.weights`` -> ``memory_weights_bytes``, ``plan.tp`` -> ``plan_tp``,
any other ``a.b`` -> ``a_b``. Training records add ``tokens`` (from the token count or
the GPU-hour budget), ``train_hours``, ``gpu_hours``, ``cost_usd`` and ``energy_kwh``.
Serving records add the aliases ``prefill_ttft_s`` and ``decode_tpot_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cost_models.options import ServeOptions, TrainOptions
from cost_models.plan import InferenceWorkload, ParallelPlan, TrainWorkload
from hw_profiles.types import System
from nas.experiment import Experiment, ServeWorkload
from nas.problem.hardware import HardwarePoint
from search_spaces.architecture import Architecture
from search_spaces.counts import model_counts

if TYPE_CHECKING:
    from nas.evaluators import Evaluator

__all__ = [
    "MOE_FIELDS",
    "SHAPE_FIELDS",
    "Candidate",
    "arch_record",
    "evaluate_candidate",
    "flatten_report",
]

# Architecture fields of every record, per-candidate and per-grid row (in this order); the
# per-candidate record adds vocab_size, ffn_activation, first_dense_layers and num_moe_layers.
SHAPE_FIELDS: tuple[str, ...] = (
    "num_layers",
    "d_model",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "d_ff",
)
MOE_FIELDS: tuple[str, ...] = ("num_experts", "top_k", "d_expert", "num_shared_experts")
_SKIP_KEYS = frozenset({"workload", "mode", "sources", "notes", "conventions", "model"})


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One point of the search: an architecture on a hardware point under a partial plan.

    ``plan`` maps degree names (``tp``, ``pp``, ``dp``, ``ep``, ``cp``: device counts;
    ``micro_batch``: sequences) to the fixed or searched values; degrees not in it are chosen
    by the planner."""

    arch: Architecture
    hardware: HardwarePoint
    plan: Mapping[str, int] = field(default_factory=dict)  # fixed or searched degrees


def flatten_report(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested cost report into record keys (rules in the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in _SKIP_KEYS:
            continue
        if isinstance(value, Mapping):
            if key.endswith("time_breakdown_s"):
                head = key[: -len("time_breakdown_s")]
                out.update({f"{prefix}{head}time_{k}_s": v for k, v in value.items() if _scalar(v)})
            elif key.endswith("memory_breakdown_bytes"):
                head = key[: -len("memory_breakdown_bytes")]
                out.update(
                    {f"{prefix}{head}memory_{k}_bytes": v for k, v in value.items() if _scalar(v)}
                )
            else:
                out.update(flatten_report(value, prefix=f"{prefix}{key}_"))
        elif _scalar(value):
            out[f"{prefix}{key}"] = value
    return out


def _scalar(value: object) -> bool:
    return isinstance(value, (int, float, str, bool)) or (
        hasattr(value, "item") and getattr(value, "ndim", 1) == 0
    )


def arch_record(arch: Architecture, *, seq_len: int) -> dict[str, Any]:
    """Architecture fields and derived counts of one candidate."""
    out: dict[str, Any] = {f: getattr(arch, f) for f in SHAPE_FIELDS}
    out["vocab_size"] = arch.vocab_size
    out["ffn_activation"] = arch.ffn_activation
    moe = arch.moe
    for f in (*MOE_FIELDS, "first_dense_layers"):
        out[f] = getattr(moe, f) if moe is not None else 0
    out["num_moe_layers"] = arch.num_moe_layers
    counts = model_counts(arch, seq_len=seq_len)
    out["params_total"] = counts.params_total
    out["params_active"] = counts.params_active
    out["params_embedding"] = counts.params_embedding
    out["flops_per_token"] = counts.flops_per_token
    out["kv_cache_bytes_per_token"] = counts.kv_cache_bytes_per_token
    return out


def evaluate_candidate(
    candidate: Candidate, *, experiment: Experiment, evaluator: Evaluator
) -> dict[str, Any]:
    """The flat trial record of one candidate (cost model, then accuracy)."""
    wl = experiment.workload
    system = candidate.hardware.system
    record: dict[str, Any] = {}
    record.update(candidate.hardware.metrics())
    fixed: dict[str, Any] = dict(candidate.plan)
    if experiment.plan.recompute is not None:
        fixed["recompute"] = experiment.plan.recompute
    workload = wl.to_cost_workload()
    if not isinstance(wl, ServeWorkload):
        fixed.setdefault("global_batch", wl.global_batch)
    record.update(arch_record(candidate.arch, seq_len=wl.context_len))
    report = _estimate(
        candidate.arch,
        system,
        workload,
        fixed,
        software=wl.options(),
        memory_headroom=experiment.hardware.memory_headroom,
    )
    cost = flatten_report(report)
    record.update({k: v for k, v in cost.items() if k not in ("device_memory_bytes",)})
    if isinstance(wl, ServeWorkload):
        record["prefill_ttft_s"] = record.get("ttft_s", math.nan)
        record["decode_tpot_s"] = record.get("tpot_s", math.nan)
        acc = experiment.accuracy
        tokens = acc.tokens or acc.tokens_per_param * float(record["params_total"])
    else:
        tokens = _train_tokens(record, wl.tokens, wl.budget_gpu_hours, system)
    record["tokens"] = tokens
    for key, value in evaluator.evaluate(candidate.arch, tokens=tokens).items():
        # the evaluator's own measurements (a proxy run's tokens_per_s) must not hide the
        # cost model's: clashing names get an ``accuracy_`` prefix
        record[key if key not in record or key == "tokens" else f"accuracy_{key}"] = value
    return record


def _estimate(
    arch: Architecture,
    system: System,
    workload: TrainWorkload | InferenceWorkload,
    fixed: Mapping[str, Any],
    *,
    software: TrainOptions | ServeOptions,
    memory_headroom: float,
) -> dict[str, Any]:
    """The ``nas estimate --json`` object (decode mode for serving: it carries the prefill
    figures too); degrees not in ``fixed`` are chosen by the planner; ``software`` is the
    workload's stack with its framework facts (training or serving)."""
    from cost_models.estimate import estimate

    degrees = {k: int(v) for k, v in fixed.items() if k in ("tp", "pp", "ep")}
    if isinstance(workload, InferenceWorkload) and degrees:
        # the inference planner takes a whole plan: data parallelism fills the devices
        tp, pp = degrees.get("tp", 1), degrees.get("pp", 1)
        if system.num_devices % (tp * pp):
            raise ValueError(f"plan: tp*pp ({tp * pp}) must divide {system.num_devices} devices")
        dp = system.num_devices // (tp * pp)
        plan = ParallelPlan(tp=tp, pp=pp, dp=dp, ep=degrees.get("ep", 1), global_batch=dp)
        return dict(
            estimate(
                arch, system, workload, plan=plan, serve=_serve(software),
                memory_headroom=memory_headroom,
            )
        )  # fmt: skip
    train = software if isinstance(software, TrainOptions) else None
    return dict(
        estimate(
            arch,
            system,
            workload,
            plan=None,
            fixed=dict(fixed) or None,
            options=train,
            serve=_serve(software),
            memory_headroom=memory_headroom,
        )
    )


def _serve(software: TrainOptions | ServeOptions) -> ServeOptions | None:
    return software if isinstance(software, ServeOptions) else None


def _train_tokens(
    record: dict[str, Any], tokens: float | None, budget_gpu_hours: float | None, system: System
) -> float:
    """Tokens seen, and the time, device-hours, money and energy to see them."""
    from nas.evaluators import tokens_from_budget

    per_device = float(record["tokens_per_s_per_device"])
    if tokens is None:
        assert budget_gpu_hours is not None
        tokens = float(
            tokens_from_budget(
                budget_gpu_hours=budget_gpu_hours, tokens_per_s_per_device=per_device
            )[0]
        )
    rate = per_device * system.num_devices
    hours = tokens / rate / 3600.0 if rate > 0 else math.inf
    record["train_hours"] = hours
    record["gpu_hours"] = hours * system.num_devices
    record["cost_usd"] = hours * float(record.get("price_per_hour_usd", math.nan))
    record["energy_kwh"] = hours * float(record["power_w"]) / 1000.0
    return tokens
