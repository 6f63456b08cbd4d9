"""Training plan search: enumerate every feasible plan as arrays, evaluate all at once, keep
the fastest that fits memory (and the top-k).

Feasibility (Megatron-Core rules): ``tp * pp * dp * cp`` = devices; ``tp`` divides the
attention heads and the KV heads divide by it or it by them, and stays inside one node
(TP's all-reduces need the scale-up network); ``pp`` <= layers and ``pp * vpp`` <= layers;
interleaving needs the micro-batch count to be a multiple of ``pp``; ``cp`` divides half
the sequence (load-balanced causal split into 2*cp chunks); ``ep`` divides the experts and
``dp * cp * tp``; ZeRO-3 only without pipelining; sequence parallelism only with ``tp > 1``;
``micro_batch * dp`` divides the global batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from cost_models.calibration import Calibration
from cost_models.ops import TrainOptions
from cost_models.plan import (
    POSITIVE_PLAN_FIELDS,
    RECOMPUTE,
    ZERO_STAGES,
    ParallelPlan,
    PlanError,
    TrainWorkload,
    check_choice,
    check_positive,
)
from cost_models.plan_batch import RECOMPUTE_CODE, PlanBatch
from cost_models.train import TrainCost, train_cost
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch

FloatArray = npt.NDArray[np.float64]
FixedValue = int | bool | str
PLAN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ParallelPlan))
MICRO_BATCHES: tuple[int, ...] = (1, 2, 4, 8)
VPP_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MAX_CP = 32
# Default tokens per optimizer step when no global batch is given: 4M tokens, the Llama 3
# 405B pre-training starting batch (arXiv 2407.21783, section 3.4.1).
DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def default_global_batch(num_devices: int, seq_len: int) -> int:
    """A multiple of the device count close to :data:`DEFAULT_BATCH_TOKENS` tokens."""
    target = DEFAULT_BATCH_TOKENS / seq_len
    return num_devices * max(1, round(target / num_devices))


def check_fixed(
    arch: Architecture, system: System, workload: TrainWorkload, fixed: Mapping[str, FixedValue]
) -> None:
    """One-line errors for fixed degrees that no plan can satisfy on their own."""
    unknown = sorted(set(fixed) - set(PLAN_FIELDS))
    if unknown:
        raise PlanError(f"{unknown[0]}: unknown plan field; allowed: {', '.join(PLAN_FIELDS)}")
    for name in POSITIVE_PLAN_FIELDS:
        check_positive(name, fixed.get(name, 1))
    check_choice("zero", fixed.get("zero", 0), ZERO_STAGES)
    if int(fixed.get("vpp", 1)) > 1 and int(fixed.get("pp", 2)) == 1:
        raise PlanError("vpp: interleaving needs pp > 1")
    if fixed.get("sequence_parallel") and int(fixed.get("tp", 2)) == 1:
        raise PlanError("sequence_parallel: needs tp > 1")
    n = system.num_devices
    tp = int(fixed.get("tp", 1))
    if arch.num_heads % tp:
        raise PlanError(f"tp: must divide num_heads ({arch.num_heads}), got {tp}")
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        raise PlanError(
            f"tp: must divide num_kv_heads ({arch.num_kv_heads}) or be a multiple of it, got {tp}"
        )
    experts = arch.moe.num_experts if arch.moe else 1
    ep = int(fixed.get("ep", 1))
    if experts % ep:
        what = f"num_experts ({experts})" if arch.moe else "1 for a dense model"
        raise PlanError(f"ep: must divide {what}, got {ep}")
    if int(fixed.get("pp", 1)) > arch.num_layers:
        raise PlanError(f"pp: must be <= num_layers ({arch.num_layers}), got {fixed['pp']}")
    cp = int(fixed.get("cp", 1))
    if cp > 1 and workload.seq_len % (2 * cp):
        raise PlanError(f"cp: 2*cp must divide seq_len ({workload.seq_len}), got cp={cp}")
    product = 1
    for name in ("tp", "pp", "dp", "cp"):
        product *= int(fixed.get(name, 1))
    given = [k for k in ("tp", "pp", "dp", "cp") if k in fixed]
    if n % product or (len(given) == 4 and product != n):
        raise PlanError(
            f"{'*'.join(given)}: the degrees multiply to {product}, which must "
            f"{'equal' if len(given) == 4 else 'divide'} the device count {n}"
        )
    check_choice("recompute", fixed.get("recompute", "none"), RECOMPUTE)


def _choices(
    arch: Architecture, system: System, workload: TrainWorkload, fixed: Mapping[str, FixedValue]
) -> dict[str, list[int]]:
    n = system.num_devices
    divs = _divisors(n)
    kv = arch.num_kv_heads
    tp = [
        t
        for t in divs
        if t <= system.scale_up_devices and arch.num_heads % t == 0 and (kv % t == 0 or t % kv == 0)
    ]
    experts = arch.moe.num_experts if arch.moe else 1
    out = {
        "tp": tp,
        "pp": [p for p in divs if p <= arch.num_layers],
        "cp": [c for c in divs if c == 1 or (c <= MAX_CP and workload.seq_len % (2 * c) == 0)],
        "ep": [e for e in _divisors(experts) if e <= n],
        "vpp": list(VPP_CHOICES),
        "sequence_parallel": [0, 1],
        "micro_batch": list(MICRO_BATCHES),
        "zero": [0, 1, 2, 3],
        "recompute": [0, 1, 2],
    }
    for key in out:
        if key in fixed:
            value = fixed[key]
            out[key] = [RECOMPUTE_CODE[str(value)] if key == "recompute" else int(value)]
    return out


def enumerate_plans(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    *,
    fixed: Mapping[str, FixedValue] | None = None,
) -> PlanBatch:
    """Every feasible plan on ``system.num_devices`` devices that agrees with ``fixed``."""
    fx = dict(fixed or {})
    check_fixed(arch, system, workload, fx)
    n = system.num_devices
    gbs = int(fx.get("global_batch", default_global_batch(n, workload.seq_len)))
    ch = _choices(arch, system, workload, fx)
    keys = list(ch)
    grid = np.array(list(itertools.product(*(ch[k] for k in keys))), dtype=np.float64)
    col = {k: grid[:, i] for i, k in enumerate(keys)}
    tp, pp, cp, ep, vpp = col["tp"], col["pp"], col["cp"], col["ep"], col["vpp"]
    dp = n / (tp * pp * cp)
    mbs, sp = col["micro_batch"], col["sequence_parallel"]
    m = gbs / np.maximum(mbs * dp, 1.0)
    ok = (dp == np.floor(dp)) & (dp >= 1)
    ok &= np.mod(dp * cp * tp, ep) == 0
    ok &= (vpp == 1) | ((pp > 1) & (pp * vpp <= arch.num_layers) & (np.mod(m, pp) == 0))
    ok &= (sp == 0) | (tp > 1)
    ok &= (col["zero"] < 3) | (pp == 1)
    ok &= m == np.floor(m)
    if "dp" in fx:
        ok &= dp == int(fx["dp"])
    if not ok.any():
        raise PlanError(
            f"no feasible plan on {n} devices with {', '.join(f'{k}={v}' for k, v in fx.items()) or 'no fixed degrees'}"
            f" (needs: global_batch {gbs} a multiple of micro_batch*dp; vpp > 1 only with pp > 1,"
            " pp*vpp <= layers and micro-batches a multiple of pp; zero 3 only with pp = 1;"
            " ep dividing dp*cp*tp)"
        )
    idx = np.nonzero(ok)[0]
    return PlanBatch(
        tp=tp[idx],
        pp=pp[idx],
        dp=dp[idx],
        ep=ep[idx],
        cp=cp[idx],
        vpp=vpp[idx],
        sp=sp[idx],
        micro_batch=mbs[idx],
        global_batch=np.full(idx.shape, float(gbs)),
        zero=col["zero"][idx],
        recompute=col["recompute"][idx],
    )


@dataclass(frozen=True, kw_only=True)
class PlanChoice:
    """The planner's answer: the chosen plan, the top-k (fastest first) and the counts."""

    best: ParallelPlan
    best_fits: bool
    top: list[tuple[ParallelPlan, float, bool]]  # (plan, step_time_s, fits)
    candidates: int
    feasible_fitting: int
    # per top plan: memory_per_device_bytes, pp_bubble_s, comm_s (all communication)
    top_details: list[dict[str, float]]
    least_memory: tuple[ParallelPlan, float]  # the plan needing the least memory, its bytes


def plan_training(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    *,
    fixed: Mapping[str, FixedValue] | None = None,
    top_k: int = 5,
    options: TrainOptions | None = None,
    calibration: Calibration | None = None,
    memory_headroom: float = 1.0,
) -> PlanChoice:
    """The fastest plan that fits ``memory_headroom`` of device memory (the fastest overall,
    flagged, if none fits)."""
    plans = enumerate_plans(arch, system, workload, fixed=fixed)
    batch = ArchBatch.from_architectures([arch]).take(np.zeros(len(plans), dtype=np.int64))
    cost: TrainCost = train_cost(
        batch,
        plans,
        system=system,
        workload=workload,
        options=options,
        calibration=calibration,
        memory_headroom=memory_headroom,
    )
    t = cost.step_time_s
    fits = cost.fits
    key = np.where(fits, t, np.inf)
    order = np.argsort(key if fits.any() else t, kind="stable")[: max(top_k, 1)]
    top = [(plans.plan(int(i)), float(t[i]), bool(fits[i])) for i in order]
    mem, parts = cost.memory_per_device_bytes, cost.time_breakdown_s
    comm = np.sum([v for k, v in parts.items() if k.endswith("_comm")], axis=0)
    details = [
        {
            "memory_per_device_bytes": float(mem[i]),
            "pp_bubble_s": float(parts["pp_bubble"][i]),
            "comm_s": float(comm[i]),
        }
        for i in order
    ]
    low = int(np.argmin(mem))
    return PlanChoice(
        best=top[0][0],
        best_fits=top[0][2],
        top=top,
        candidates=len(plans),
        feasible_fitting=int(fits.sum()),
        top_details=details,
        least_memory=(plans.plan(low), float(mem[low])),
    )


__all__ = [
    "DEFAULT_BATCH_TOKENS",
    "PLAN_FIELDS",
    "PlanChoice",
    "check_fixed",
    "default_global_batch",
    "enumerate_plans",
    "plan_training",
]
