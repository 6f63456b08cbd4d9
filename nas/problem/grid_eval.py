"""Vectorised evaluation of a whole space grid (the exhaustive backend's evaluator).

Every candidate of ``space.grid()`` on every hardware point is costed with the array cores
of the cost models (``cost_models.train.train_cost``, ``cost_models.inference.cost.
inference_arrays``) and scored with the evaluator's ``evaluate_batch``, in chunks. It takes
the experiment's parts as arguments (:meth:`nas.problem.ExperimentProblem.evaluate_grid`
passes them), so this module does not import the problem class.

Parallel plan per candidate: the fastest plan that fits memory among a small plan set
(the fastest overall, flagged ``fits = False``, when none fits). The set is the product of
``plan.searched`` lists, or the ``plan.fixed`` degrees, or for ``auto`` tensor parallelism
1/2/4/8 inside a node x pipeline 1/2/4 x recompute none/full, data parallelism filling the
rest, ZeRO-1 (or the fixed or searched ``zero`` and ``dp_replicate``), micro-batch 1
(train) — a subset of what the per-candidate planner of the Optuna path searches, stated so
the exact front is exact *for this plan set*; the
exhaustive backend then re-plans the leading rows with the full planner
(:mod:`nas.problem.refine`). Expert parallelism is the largest power of two dividing the
experts and ``dp * tp``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from cost_models.plan import RECOMPUTE
from cost_models.plan_batch import PlanBatch
from cost_models.plans import shortlist_plans
from hw_profiles.types import System
from nas.experiment import Experiment, ServeWorkload, TrainWorkload
from nas.problem.hardware import HardwarePoint
from nas.problem.record import MOE_FIELDS, SHAPE_FIELDS
from search_spaces.counts import ArchBatch, active_params, forward_flops_per_token, total_params

if TYPE_CHECKING:
    from nas.evaluators import Evaluator
    from search_spaces.spaces import SearchSpace

__all__ = ["CHUNK", "evaluate_grid", "plan_set"]

FloatArray = npt.NDArray[np.float64]
CHUNK = 131_072
# plan fields recorded as plan_<name> columns (sequence parallelism as a boolean column)
_PLAN_COLUMNS = tuple(f.name for f in fields(PlanBatch) if f.name not in ("sp", "global_batch"))
_NO_PLAN = "no plan of the plan set is valid (tp must divide the heads, pp the layers)"


def plan_set(experiment: Experiment, system: System) -> list[dict[str, Any]]:
    """The plans tried for every candidate (see the module docstring): the experiment's plan
    section read as a :func:`cost_models.plans.shortlist_plans` call."""
    spec = experiment.plan
    combos: list[dict[str, Any]] | None = None
    if spec.mode == "searched":
        keys = list(spec.searched)
        combos = [
            dict(zip(keys, c, strict=True))
            for c in itertools.product(*(spec.searched[k] for k in keys))
        ]
    elif spec.mode == "fixed":
        combos = [{str(k): v for k, v in spec.fixed.items()}]
    if isinstance(experiment.workload, ServeWorkload):
        recomputes = ["none"]  # no backward pass to recompute for
    elif spec.recompute:
        recomputes = [spec.recompute]
    else:
        recomputes = ["none", "full"] if spec.mode == "auto" else ["selective"]
    return shortlist_plans(system, combos=combos, recomputes=recomputes)


def _full(n: int, value: float) -> FloatArray:
    return np.full(n, float(value))


def _expert_parallel(b: ArchBatch, group: int, fixed: int | None) -> FloatArray:
    if fixed is not None:
        return np.full(len(b), float(fixed))
    experts = np.maximum(b.num_experts, 1).astype(np.int64)
    ep = np.gcd(experts, group)
    return 2.0 ** np.floor(np.log2(np.maximum(ep, 1)))


def _valid(b: ArchBatch, p: dict[str, Any], ep: FloatArray) -> npt.NDArray[np.bool_]:
    tp = p["tp"]
    ok = (np.mod(b.num_heads, tp) == 0) & (
        (np.mod(b.num_kv_heads, tp) == 0) | (np.mod(tp, b.num_kv_heads) == 0)
    )
    ok &= b.num_layers >= p["pp"]
    ok &= (b.num_experts == 0) | (np.mod(np.maximum(b.num_experts, 1), ep) == 0)
    out: npt.NDArray[np.bool_] = ok
    return out


def _train_chunk(experiment: Experiment, b: ArchBatch, system: System) -> dict[str, Any]:
    from cost_models.train.step import train_cost

    wl = experiment.workload
    assert isinstance(wl, TrainWorkload)
    workload = wl.to_cost_workload()
    options = wl.options()
    gbs = wl.global_batch
    best: dict[str, Any] | None = None
    key_best = np.full(len(b), np.inf)
    for p in plan_set(experiment, system):
        if gbs % (p["micro_batch"] * p["dp"]):
            continue
        ep = _expert_parallel(b, p["dp"] * p["tp"], p["ep"])
        plans = PlanBatch(
            tp=_full(len(b), p["tp"]),
            pp=_full(len(b), p["pp"]),
            dp=_full(len(b), p["dp"]),
            ep=ep,
            cp=_full(len(b), p["cp"]),
            vpp=_full(len(b), 1),
            sp=_full(len(b), p["tp"] > 1),
            micro_batch=_full(len(b), p["micro_batch"]),
            global_batch=_full(len(b), gbs),
            zero=_full(len(b), p["zero"]),
            recompute=_full(len(b), RECOMPUTE.index(p["recompute"])),
            dp_replicate=_full(len(b), p["dp_replicate"]),
        )
        cost = train_cost(
            b,
            plans,
            system=system,
            workload=workload,
            options=options,
            memory_headroom=experiment.hardware.memory_headroom,
        )
        valid = _valid(b, p, ep)
        # rank: fitting plans first (by step time), then non-fitting ones
        key = np.where(valid, cost.step_time_s + np.where(cost.fits, 0.0, 1e12), np.inf)
        better = key < key_best
        key_best = np.where(better, key, key_best)
        cols = _train_columns(cost, plans)
        if best is None:
            best = {
                k: np.where(better, v, np.nan) if v.dtype.kind == "f" else v
                for k, v in cols.items()
            }
        else:
            best = {k: np.where(better, v, best[k]) for k, v in cols.items()}
    if best is None:
        raise ValueError(f"plan: global batch {gbs} fits no plan of the plan set")
    best["fits"] = best["fits"].astype(bool) & np.isfinite(key_best)
    best["fail_reason"] = np.where(np.isfinite(key_best), "", _NO_PLAN)
    return best


def _train_columns(cost: Any, plans: PlanBatch) -> dict[str, FloatArray]:
    out: dict[str, Any] = {
        k: getattr(cost, k)
        for k in (
            "step_time_s",
            "tokens_per_s",
            "tokens_per_s_per_device",
            "mfu",
            "memory_per_device_bytes",
        )
    }
    out["fits"] = cost.fits.astype(np.float64)
    for name in _PLAN_COLUMNS:
        out[f"plan_{name}"] = getattr(plans, name)
    out["plan_sequence_parallel"] = plans.sp
    out.update({f"time_{k}_s": v for k, v in cost.time_breakdown_s.items()})
    out.update({f"memory_{k}_bytes": v for k, v in cost.memory_breakdown_bytes.items()})
    return out


def _serve_chunk(experiment: Experiment, b: ArchBatch, system: System) -> dict[str, Any]:
    from cost_models.inference.cost import inference_arrays
    from cost_models.inference.planner import fits_within

    wl = experiment.workload
    assert isinstance(wl, ServeWorkload)
    engine = wl.options()
    best: dict[str, Any] | None = None
    key_best = np.full(len(b), np.inf)
    for p in plan_set(experiment, system):
        ep = _expert_parallel(b, p["dp"] * p["tp"], p["ep"])
        r = inference_arrays(
            b,
            system,
            tp=p["tp"],
            pp=p["pp"],
            ep=ep,
            dp=p["dp"],
            batch=wl.batch,
            prompt_len=wl.prompt_len,
            gen_len=wl.gen_len,
            weight_dtype=wl.weight_dtype,
            kv_dtype=wl.kv_dtype,
            serve=engine,
        )
        fits = fits_within(r, system, experiment.hardware.memory_headroom)
        key = np.where(_valid(b, p, ep), r.tpot_s + np.where(fits, 0.0, 1e12), np.inf)
        better = key < key_best
        key_best = np.where(better, key, key_best)
        cols: dict[str, Any] = {
            "ttft_s": r.ttft_s,
            "tpot_s": r.tpot_s,
            "e2e_s": r.e2e_s,
            "tokens_per_s": r.tokens_per_s,
            "kv_cache_bytes": r.kv_cache_bytes,
            "memory_per_device_bytes": r.memory_per_device_bytes,
            "fits": fits.astype(np.float64),
        }
        for name in ("tp", "pp", "dp"):
            cols[f"plan_{name}"] = np.full(len(b), float(p[name]))
        cols["plan_ep"] = ep
        cols.update({f"time_{k}_s": v for k, v in r.decode_breakdown_s.items()})
        cols.update({f"prefill_time_{k}_s": v for k, v in r.prefill_breakdown_s.items()})
        cols.update({f"memory_{k}_bytes": v for k, v in r.memory_breakdown_bytes.items()})
        best = cols if best is None else {k: np.where(better, v, best[k]) for k, v in cols.items()}
    assert best is not None
    best["fits"] = best["fits"].astype(bool) & np.isfinite(key_best)
    best["fail_reason"] = np.where(np.isfinite(key_best), "", _NO_PLAN)
    best["prefill_ttft_s"], best["decode_tpot_s"] = best["ttft_s"], best["tpot_s"]
    return best


def _chunk(
    b: ArchBatch, hw: HardwarePoint, *, experiment: Experiment, evaluator: Evaluator
) -> dict[str, Any]:
    from nas.evaluators import tokens_from_budget

    wl = experiment.workload
    cols: dict[str, Any] = {k: getattr(b, k) for k in (*SHAPE_FIELDS, *MOE_FIELDS)}
    cols["params_total"] = total_params(b)
    cols["params_active"] = active_params(b)
    cols["flops_per_token"] = forward_flops_per_token(b, seq_len=wl.context_len)
    system = hw.system
    if isinstance(wl, ServeWorkload):
        cols.update(_serve_chunk(experiment, b, system))
        acc = experiment.accuracy
        tokens = (
            np.full(len(b), acc.tokens)
            if acc.tokens
            else acc.tokens_per_param * cols["params_total"]
        )
    else:
        cols.update(_train_chunk(experiment, b, system))
        rate = cols["tokens_per_s_per_device"]
        tokens = (
            np.full(len(b), wl.tokens)
            if wl.tokens is not None
            else tokens_from_budget(
                budget_gpu_hours=wl.budget_gpu_hours or math.nan,
                tokens_per_s_per_device=np.nan_to_num(rate),
            )
        )
        hours = tokens / np.maximum(rate * system.num_devices, 1e-30) / 3600.0
        metrics = hw.metrics()
        cols["train_hours"] = hours
        cols["gpu_hours"] = hours * system.num_devices
        cols["cost_usd"] = hours * metrics["price_per_hour_usd"]
        cols["energy_kwh"] = hours * metrics["power_w"] / 1000.0
    cols["tokens"] = tokens
    acc_cols = evaluator.evaluate_batch(b, tokens=np.maximum(tokens, 1.0))
    for key, value in acc_cols.items():
        cols[key if key not in cols or key == "tokens" else f"accuracy_{key}"] = value
    return cols


def evaluate_grid(
    *,
    experiment: Experiment,
    space: SearchSpace,
    evaluator: Evaluator,
    points: Sequence[HardwarePoint],
    max_candidates: int,
    on_chunk: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Every candidate of ``space`` x hardware point, one row each (``param_*`` + metrics);
    ``on_chunk(done, total)`` after each chunk of candidates (a progress bar)."""
    size = space.size() * len(points)
    if size > max_candidates:
        raise ValueError(
            f"search.max_candidates: the grid has {size:,} candidates ({len(points)} hardware "
            f"points), over the limit {max_candidates:,}; narrow space_overrides"
        )
    batch, params = space.grid(max_candidates=max_candidates)
    total = len(batch) * len(points)
    frames = []
    for hw in points:
        for start in range(0, len(batch), CHUNK):
            idx = np.arange(start, min(start + CHUNK, len(batch)))
            cols = _chunk(batch.take(idx), hw, experiment=experiment, evaluator=evaluator)
            frame = pd.DataFrame({f"param_{k}": v[idx] for k, v in params.items()})
            for key, value in {**hw.metrics(), **cols}.items():
                frame[key] = value
            frames.append(frame)
            if on_chunk is not None:
                on_chunk(sum(len(f) for f in frames), total)
    out: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return out
