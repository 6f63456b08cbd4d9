"""Parallel-plan enumeration, one enumerator for both phases: every feasible plan on a
system's devices that agrees with the fixed degrees, as :class:`PlanBatch` arrays.

A third mode, :func:`shortlist_plans`, is architecture-free: a short list of degree
combinations that a vectorised grid tries for every candidate at once (the exhaustive
search), each candidate then keeping the fastest of them that is valid and fits.

The enumerators search ``ep`` among the divisors of the routed experts; a fixed ``ep`` that
does not divide them is accepted (each rank holds ``ceil(E / ep)`` experts, the surplus as
redundant copies, as large-EP serving deploys them).

The mode follows the workload: a :class:`TrainWorkload` enumerates training plans, an
:class:`InferenceWorkload` serving plans.

* **train** (Megatron-Core rules): ``tp * pp * dp * cp`` = devices; ``tp`` divides the
  attention heads and the KV heads divide by it or it by them, and stays inside one scale-up
  domain (TP's all-reduces need the scale-up network); ``pp`` <= layers and ``pp * vpp`` <=
  layers; interleaving needs the micro-batch count to be a multiple of ``pp``; ``cp`` divides
  half the sequence (load-balanced causal split into 2*cp chunks); ``ep`` divides the experts
  and ``dp * cp * tp``; ZeRO-3/FSDP composes with pipelining (as in torchtitan); sequence
  parallelism only with ``tp > 1``; ``micro_batch * dp`` divides the global batch.
* **serve**: ``tp * pp * dp`` = devices (``dp`` model replicas share the request batch,
  ``global_batch = dp``); ``tp`` divides the heads and the KV heads divide by it or it by them
  (MLA caches one latent, so any ``tp`` dividing the heads); ``pp`` <= layers; ``ep`` divides
  the experts and ``tp * dp``; no context parallelism.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Literal

import numpy as np

from cost_models.plan import (
    POSITIVE_PLAN_FIELDS,
    RECOMPUTE,
    ZERO_STAGES,
    InferenceWorkload,
    ParallelPlan,
    PlanError,
    TrainWorkload,
    check_choice,
    check_positive,
    check_replicas,
)
from cost_models.plan_batch import RECOMPUTE_CODE, PlanBatch
from hw_profiles.types import System
from search_spaces.architecture import Architecture

__all__ = [
    "DEFAULT_BATCH_TOKENS",
    "PLAN_FIELDS",
    "SERVE_PLAN_FIELDS",
    "FixedValue",
    "PlanMode",
    "check_fixed",
    "check_serve_plan",
    "default_global_batch",
    "divisors",
    "enumerate_plans",
    "shortlist_plans",
]

FixedValue = int | bool | str
PlanMode = Literal["train", "serve"]
SERVE_PLAN_FIELDS: tuple[str, ...] = ("tp", "pp", "dp", "ep", "cp")
PLAN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ParallelPlan))
MICRO_BATCHES: tuple[int, ...] = (1, 2, 4, 8)
VPP_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MAX_CP = 32
# Default tokens per optimizer step when no global batch is given: 4M tokens, the Llama 3
# 405B pre-training starting batch (arXiv 2407.21783, section 3.4.1).
DEFAULT_BATCH_TOKENS = 4 * 1024 * 1024


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def default_global_batch(num_devices: int, seq_len: int) -> int:
    """A multiple of the device count close to :data:`DEFAULT_BATCH_TOKENS` tokens."""
    target = DEFAULT_BATCH_TOKENS / seq_len
    return num_devices * max(1, round(target / num_devices))


def _check_train_fixed(
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
    _check_expert_parallel(arch, int(fixed.get("ep", 1)))
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
    # dp_replicate alone: the enumeration keeps the dp it divides and the zero stages above 0
    replicas = int(fixed.get("dp_replicate", 1))
    check_replicas(int(fixed.get("dp", replicas)), replicas, int(fixed.get("zero", 1)))


def _train_choices(
    arch: Architecture, system: System, workload: TrainWorkload, fixed: Mapping[str, FixedValue]
) -> dict[str, list[int]]:
    n = system.num_devices
    divs = divisors(n)
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
        "ep": [e for e in divisors(experts) if e <= n],
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
    workload: TrainWorkload | InferenceWorkload,
    *,
    fixed: Mapping[str, FixedValue] | None = None,
) -> PlanBatch:
    """Every feasible plan on ``system.num_devices`` devices that agrees with ``fixed``, in a
    stable order (``tp`` outermost). Training raises :class:`PlanError` when no plan is
    feasible; serving returns an empty batch unless fixed degrees explain why."""
    if isinstance(workload, InferenceWorkload):
        return _serve_plans(arch, system, _check_serve_fixed(fixed or {}))
    return _train_plans(arch, system, workload, fixed=fixed)


def check_fixed(
    arch: Architecture,
    system: System,
    workload: TrainWorkload | InferenceWorkload,
    fixed: Mapping[str, FixedValue],
) -> None:
    """One-line errors for fixed degrees that no plan can satisfy on their own."""
    if isinstance(workload, InferenceWorkload):
        _check_serve_fixed(fixed)
    else:
        _check_train_fixed(arch, system, workload, fixed)


def _train_plans(
    arch: Architecture,
    system: System,
    workload: TrainWorkload,
    *,
    fixed: Mapping[str, FixedValue] | None = None,
) -> PlanBatch:
    fx = dict(fixed or {})
    _check_train_fixed(arch, system, workload, fx)
    n = system.num_devices
    gbs = int(fx.get("global_batch", default_global_batch(n, workload.seq_len)))
    ch = _train_choices(arch, system, workload, fx)
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
    ok &= m == np.floor(m)
    replicas = float(fx.get("dp_replicate", 1))
    ok &= (np.mod(dp, replicas) == 0) & ((replicas == 1) | (col["zero"] > 0))
    ok &= np.mod(dp / replicas * cp * tp, ep) == 0  # expert groups lie inside one replica
    if "dp" in fx:
        ok &= dp == int(fx["dp"])
    if not ok.any():
        raise PlanError(
            f"no feasible plan on {n} devices with {', '.join(f'{k}={v}' for k, v in fx.items()) or 'no fixed degrees'}"
            f" (needs: global_batch {gbs} a multiple of micro_batch*dp; vpp > 1 only with pp > 1,"
            " pp*vpp <= layers and micro-batches a multiple of pp;"
            " ep dividing dp*cp*tp (of one replica); dp_replicate dividing dp, with zero >= 1)"
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
        dp_replicate=np.full(idx.shape, replicas),
    )


def check_serve_plan(arch: Architecture, system: System, plan: ParallelPlan) -> None:
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
    _check_expert_parallel(arch, plan.ep)


def _check_expert_parallel(arch: Architecture, ep: int) -> None:
    """A dense model has no expert parallelism. A fixed ``ep`` need not divide the experts:
    each rank then holds ``ceil(E / ep)`` of them, the surplus as redundant copies (large-EP
    serving; :func:`cost_models.sharding.experts_per_rank`). The enumerators only search
    ``ep`` dividing the experts; a non-dividing one must be asked for."""
    if arch.moe is None and ep != 1:
        raise PlanError(f"ep: must be 1 for a dense model, got {ep}")


def _check_serve_fixed(fixed: Mapping[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in fixed.items():
        if name not in SERVE_PLAN_FIELDS:
            raise PlanError(
                f"{name}: not an inference plan field; inference takes "
                f"{', '.join(SERVE_PLAN_FIELDS)}"
            )
        out[name] = check_positive(name, value)
    return out


def _serve_plans(arch: Architecture, system: System, want: Mapping[str, int]) -> PlanBatch:
    n = system.num_devices
    experts = arch.moe.num_experts if arch.moe is not None else 1
    kv = arch.num_kv_heads
    tps = [
        t
        for t in divisors(n)
        if arch.num_heads % t == 0 and (arch.mla is not None or kv % t == 0 or t % kv == 0)
    ]
    pps = [p for p in divisors(n) if p <= arch.num_layers]
    rows = [
        (tp, pp, n // (tp * pp), ep)
        for tp in tps
        for pp in pps
        if n % (tp * pp) == 0
        for ep in ([want["ep"]] if "ep" in want else divisors(experts))
        if (n // pp) % ep == 0  # ep divides tp * dp
    ]
    rows = [
        r
        for r in rows
        if all(
            dict(zip(("tp", "pp", "dp", "ep"), r, strict=True)).get(k, 1) == v
            for k, v in want.items()
        )
    ]
    if not rows and want:
        # name the violated rule: build the plan the fixed degrees imply and check it
        tp, pp = want.get("tp", 1), want.get("pp", 1)
        dp = want.get("dp", max(n // (tp * pp), 1))
        implied = ParallelPlan(tp=tp, pp=pp, dp=dp, ep=want.get("ep", 1), cp=want.get("cp", 1),
                               global_batch=dp)  # fmt: skip
        check_serve_plan(arch, system, implied)
    grid = np.array(rows, dtype=np.float64).reshape(-1, 4)
    ones = np.ones(len(rows))
    return PlanBatch(
        tp=grid[:, 0],
        pp=grid[:, 1],
        dp=grid[:, 2],
        ep=grid[:, 3],
        cp=ones,
        vpp=ones.copy(),
        sp=np.zeros(len(rows)),
        micro_batch=ones.copy(),
        global_batch=grid[:, 2].copy(),
        zero=np.zeros(len(rows)),
        recompute=np.zeros(len(rows)),
        dp_replicate=ones.copy(),
    )


# The automatic shortlist: tensor parallelism inside one scale-up domain, shallow pipelines.
SHORTLIST_TP: tuple[int, ...] = (1, 2, 4, 8)
SHORTLIST_PP: tuple[int, ...] = (1, 2, 4)


def shortlist_plans(
    system: System,
    *,
    combos: Sequence[Mapping[str, object]] | None,
    recomputes: Sequence[str],
) -> list[dict[str, object]]:
    """Architecture-free plans for a vectorised grid: each degree combination (``tp``,
    ``pp``, ``cp``, ``micro_batch``, ``ep``, ``zero``, ``dp_replicate``; ``None`` for the
    automatic shortlist of :data:`SHORTLIST_TP` inside a scale-up domain x
    :data:`SHORTLIST_PP`) times each recompute policy, data parallelism filling the devices;
    combinations that do not divide the device count, or whose ``dp_replicate`` does not
    divide dp or comes without ZeRO, are dropped. ``ep`` stays ``None`` unless given (the grid
    derives it per model); ZeRO defaults to stage 1, one replica."""
    n = system.num_devices
    if combos is None:
        node = min(system.scale_up_devices, n)
        tps = [t for t in SHORTLIST_TP if node % t == 0]
        combos = [{"tp": t, "pp": p} for t in tps for p in SHORTLIST_PP if n % (t * p) == 0]
    out: list[dict[str, object]] = []
    for combo, rc in itertools.product(combos, recomputes):
        tp, pp = int(str(combo.get("tp", 1))), int(str(combo.get("pp", 1)))
        cp = int(str(combo.get("cp", 1)))
        zero, replicas = int(str(combo.get("zero", 1))), int(str(combo.get("dp_replicate", 1)))
        if n % (tp * pp * cp):
            continue
        dp = n // (tp * pp * cp)
        if dp % replicas or (replicas > 1 and zero == 0):
            continue
        out.append(
            {
                "tp": tp,
                "pp": pp,
                "cp": cp,
                "dp": dp,
                "micro_batch": int(str(combo.get("micro_batch", 1))),
                "recompute": rc,
                "ep": combo.get("ep"),
                "zero": zero,
                "dp_replicate": replicas,
            }
        )
    if not out:
        raise PlanError(f"plan: no plan of the plan set divides num_devices {n}")
    return out
