"""Time of collective operations on a system's network tiers (alpha-beta, vectorised).

Semantics follow NVIDIA nccl-tests (doc/PERFORMANCE.md): ``size_bytes`` is the per-rank
buffer. all_reduce: the buffer reduced; all_gather / reduce_scatter: the full (gathered,
or pre-scattered) buffer; all_to_all: the total bytes each rank sends, its own share
included; broadcast: the buffer; p2p: the bytes sent between two ranks ``stride`` devices
apart. Bus bandwidth = algorithm bandwidth (``size / time``) times 2(n-1)/n for all_reduce,
(n-1)/n for reduce_scatter, all_gather and all_to_all, 1 for broadcast and p2p (nccl-tests
PERFORMANCE.md).

Model. A group is mapped onto the tiers by :func:`cost_models.network.topology.group_levels`. For
each algorithm that applies, the time is ``base + sum(hops * alpha_tier) + bytes /
(B_tier * efficiency_tier)``; the fastest algorithm and protocol win per element, as NCCL's
tuner picks them (NCCL ``src/graph/tuning.cc``, ``ncclTopoTuneModel``):

- ``ring``: one ring over all ranks; 2(n-1) steps for all_reduce (Patarasuk & Yuan 2009,
  "Bandwidth optimal all-reduce algorithms", JPDC 69(2): ``2(n-1) alpha + 2 (n-1)/n S/B``).
  Across nodes every rank's NIC carries one channel, so a tier-k boundary gets
  ``r_{k-1} * B_k`` (NCCL runs one ring per rail).
- ``tree``: NCCL's double binary tree: a chain inside the node and ``log2`` depth across
  nodes, full bandwidth ``2 S / B`` (Sanders, Speck & Träff 2009, "Two-tree algorithms for
  full bandwidth broadcast, reduction and scan", Parallel Computing 35(12)); all_reduce only.
- ``direct``: one step to every peer on a full mesh (Ascend HCCL / RCCL mesh algorithms);
  all_to_all and p2p are always direct (pairwise exchange).
- ``torus``: dimension-ordered rings on a 2D/3D torus (or a physical ring).
- ``hierarchical``: reduce-scatter inside each inner domain, the reduction across domains
  per rail on ``S / r``, all-gather back (Thakur, Rabenseifner & Gropp 2005, IJHPCA 19(1)).
  Consecutive switched network tiers (NICs inside a pod, an oversubscribed aggregation layer
  above it) are crossed by one ring per rail, not staged again.

All-to-all across tiers: every tier works at once and the slowest one bounds the time,
``max_k bytes_k / B_k`` with ``bytes_k = S (r_k - r_{k-1}) / n`` leaving each rank through
tier k (DeepEP: NVLink intranode, RDMA internode; DeepSeek-V3 report arXiv 2412.19437 3.2).

Protocols. ``Tier.latency_s`` is the per-step latency of NCCL's LL128 protocol (the files
cite tuning.cc ``hwLat``). LL and Simple scale it by NCCL's ratios, separately for the
scale-up tier (NVLink row) and network tiers (NET row), add NCCL's base latency and
reduce bandwidth as NCCL does (LL: 1/4 for all_reduce, 1/3 otherwise; LL128: 0.92).
Values from NCCL tuning.cc (v2.8, ``baseLat``/``hwLat`` ring rows and "model refinements").
NVLink SHARP (in-switch reduction) is not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from cost_models.network.topology import (
    Cost,
    FloatArray,
    Level,
    group_levels,
    hop_cost,
    level_all_to_all_s_per_byte,
    level_broadcast,
    level_p2p,
    level_reduce_scatter,
)
from hw_profiles.types import System

CollectiveOp = Literal[
    "all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "p2p"
]
COLLECTIVE_OPS: tuple[str, ...] = get_args(CollectiveOp)
ArrayLike = npt.ArrayLike

PROTOCOLS: tuple[str, ...] = ("LL", "LL128", "Simple")
# NCCL tuning.cc baseLat, ring row {LL, LL128, Simple} (us).
_BASE_S = np.array([3.6e-6, 10.0e-6, 8.4e-6])
# NCCL tuning.cc hwLat ring rows, relative to LL128: NVLink {0.47, 1.9, 3.4} us,
# NET {2.7, 4.0, 9.6} us.
_UP_RATIO = np.array([0.47 / 1.9, 1.0, 3.4 / 1.9])
_OUT_RATIO = np.array([2.7 / 4.0, 1.0, 9.6 / 4.0])
# NCCL tuning.cc model refinements: LL moves 4 data bytes per 8-byte line and a ring
# all_reduce runs at 1/4 of the Simple bus bandwidth (1/3 for the other collectives);
# LL128 keeps 120 of 128 bytes (0.92).
_LL_BW_ALL_REDUCE, _LL_BW_OTHER, _LL128_BW = 1.0 / 4.0, 1.0 / 3.0, 0.92
_TREE_BW = 0.9  # NCCL tuning.cc: tree busBw = ring busBw * .9

ALGORITHMS: tuple[str, ...] = ("ring", "tree", "staged")  # "staged": per level in turn


class CollectiveError(ValueError):
    """An invalid collective request; the message names the argument and allowed values."""


@dataclass(frozen=True, kw_only=True)
class CollectiveResult:
    """One collective: its time, the algorithm and protocol chosen, nccl-tests bandwidths
    (0 for a no-op) and the names of the tiers the group crosses."""

    time_s: float
    algorithm: str
    protocol: str
    algorithm_bandwidth_bytes_per_s: float
    bus_bandwidth_bytes_per_s: float
    tiers: tuple[str, ...]

    def __post_init__(self) -> None:
        if not np.isfinite(self.time_s) or self.time_s < 0:
            raise CollectiveError(f"time_s: must be finite and >= 0, got {self.time_s}")


def bus_bandwidth_factor(op: CollectiveOp, group_size: ArrayLike) -> FloatArray:
    """nccl-tests PERFORMANCE.md: busbw = algbw * factor (n = group size)."""
    n = np.asarray(group_size, dtype=np.float64)
    if op == "all_reduce":
        return 2.0 * (n - 1.0) / n
    if op in ("reduce_scatter", "all_gather", "all_to_all"):
        return (n - 1.0) / n
    return np.ones_like(n)


def collective_time_s(
    system: System,
    *,
    op: CollectiveOp,
    size_bytes: ArrayLike,
    group_size: ArrayLike,
    stride: ArrayLike = 1,
) -> FloatArray:
    """Seconds for ``op`` on ``size_bytes`` among ``group_size`` ranks ``stride`` devices
    apart; arrays broadcast together. Group size 1 (or 0 bytes) takes 0 s."""
    time_s, _, _ = _evaluate(system, op, size_bytes, group_size, stride)
    return time_s


def collective(
    system: System, *, op: CollectiveOp, size_bytes: float, group_size: int, stride: int = 1
) -> CollectiveResult:
    """One collective with its algorithm, protocol, bandwidths and tiers crossed."""
    time, alg, proto = _evaluate(system, op, size_bytes, group_size, stride)
    t = float(time)
    n = np.asarray([group_size if op != "p2p" else 2], dtype=np.float64)
    levels = group_levels(system, n, np.asarray([stride], dtype=np.float64))
    crossed = tuple(lv.tier.name for lv in levels if bool(lv.active[0]))
    if t == 0.0:
        return CollectiveResult(
            time_s=0.0,
            algorithm="none",
            protocol="none",
            algorithm_bandwidth_bytes_per_s=0.0,
            bus_bandwidth_bytes_per_s=0.0,
            tiers=(),
        )
    algbw = float(size_bytes) / t
    return CollectiveResult(
        time_s=t,
        algorithm=_algorithm_name(op, ALGORITHMS[int(alg)], levels),
        protocol=PROTOCOLS[int(proto)],
        algorithm_bandwidth_bytes_per_s=algbw,
        bus_bandwidth_bytes_per_s=algbw * float(bus_bandwidth_factor(op, group_size)),
        tiers=crossed,
    )


def _algorithm_name(op: str, algorithm: str, levels: tuple[Level, ...]) -> str:
    active = [lv for lv in levels if bool(lv.active[0])]
    if op in ("all_to_all", "p2p") or algorithm == "staged":
        if any(lv.is_torus for lv in active):
            return "torus" if len(active) == 1 else "hierarchical"
        if op in ("all_to_all", "p2p"):
            return "direct"
        if len(active) > 1:
            return "hierarchical"
        return "direct" if active and active[0].tier.topology == "full_mesh" else "ring"
    return algorithm


def _validate(system: System, op: str, size: FloatArray, n: FloatArray, s: FloatArray) -> None:
    if op not in COLLECTIVE_OPS:
        raise CollectiveError(
            f"op: unknown collective {op!r}; choose one of {', '.join(COLLECTIVE_OPS)}"
        )
    if not np.all(np.isfinite(size)) or np.any(size < 0):
        raise CollectiveError("size_bytes: must be finite and >= 0")
    for name, value in (("group_size", n), ("stride", s)):
        if np.any(value < 1) or np.any(value != np.floor(value)):
            raise CollectiveError(f"{name}: must be a positive integer")
    span = np.where(n > 1, n * s, 1)
    if np.any(span > system.num_devices):
        worst = np.unravel_index(int(np.argmax(span)), span.shape)
        raise CollectiveError(
            f"group_size: {int(n[worst])} ranks at stride {int(s[worst])} span "
            f"{int(span[worst])} devices; {system.name} has {system.num_devices} "
            f"(at most {system.max_devices})"
        )


def _evaluate(
    system: System, op: str, size_bytes: ArrayLike, group_size: ArrayLike, stride: ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    size, n, s = np.broadcast_arrays(
        np.asarray(size_bytes, dtype=np.float64),
        np.asarray(group_size, dtype=np.float64),
        np.asarray(stride, dtype=np.float64),
    )
    _validate(system, op, size, n, s)
    levels = group_levels(system, np.full_like(n, 2.0) if op == "p2p" else n, s)
    candidates = _candidates(op, levels, size, n)
    ll_bw = _LL_BW_ALL_REDUCE if op == "all_reduce" else _LL_BW_OTHER
    bw_factor = (ll_bw, _LL128_BW, 1.0)
    best = np.full(size.shape, np.inf)
    best_alg = np.zeros(size.shape, dtype=np.int64)
    best_proto = np.zeros(size.shape, dtype=np.int64)
    for a, (cost, valid) in enumerate(candidates):
        if cost is None:
            continue
        for p in range(len(PROTOCOLS)):
            t = (
                _BASE_S[p]
                + _UP_RATIO[p] * cost.up_latency_s
                + _OUT_RATIO[p] * cost.out_latency_s
                + np.asarray(cost.transfer_s) / bw_factor[p]
            )
            t = np.where(valid, t, np.inf)
            better = t < best
            best = np.where(better, t, best)
            best_alg = np.where(better, a, best_alg)
            best_proto = np.where(better, p, best_proto)
    no_op = (n <= 1) | (size == 0)
    return np.where(no_op, 0.0, best), best_alg, best_proto


Candidate = tuple[Cost | None, "npt.NDArray[np.bool_] | bool"]


def _candidates(
    op: str, levels: tuple[Level, ...], size: FloatArray, n: FloatArray
) -> list[Candidate]:
    """(cost, valid) per entry of :data:`ALGORITHMS` for this op."""
    torus_active = np.zeros(size.shape, dtype=bool)
    for lv in levels:
        if lv.is_torus:
            torus_active |= lv.active
    flat_ok = ~torus_active
    if op == "all_to_all":
        return [(None, False), (None, False), (_all_to_all(levels, size, n), True)]
    if op == "p2p":
        p2p = _sum(_only_active(lv, level_p2p(lv, size)) for lv in levels)
        return [(None, False), (None, False), (p2p, True)]
    if op == "all_reduce":
        ring = _flat_ring(levels, n, size, passes=2)
        tree = _tree(levels, size)
        staged = _staged_reduce_scatter(levels, size).scaled(2)
        return [(ring, flat_ok), (tree, flat_ok), (staged, True)]
    if op in ("reduce_scatter", "all_gather"):
        ring = _flat_ring(levels, n, size, passes=1)
        staged = _staged_reduce_scatter(levels, size)
        return [(ring, flat_ok), (None, False), (staged, True)]
    # broadcast: a pipelined ring (NCCL), or per level in turn
    ring = _flat_ring(levels, n, size, passes=1, bus_factor=1.0)
    staged = _sum(level_broadcast(lv, size) for lv in levels)
    return [(ring, flat_ok), (None, False), (staged, True)]


def _staged_reduce_scatter(levels: tuple[Level, ...], size: FloatArray) -> Cost:
    """Reduce-scatter level by level, each on the shard ``S / r_{k-1}`` the level below left
    (Thakur, Rabenseifner & Gropp 2005). Consecutive switched network tiers (a pod's NICs,
    then an oversubscribed aggregation layer above the pods) are one ring per rail through
    every scale-up domain, as NCCL's inter-node ring is: no library splits the network
    ring at an aggregation layer, so a second network tier changes which links bound the
    ring, not how many steps it takes."""
    total = Cost(0.0, 0.0, 0.0)
    run: list[Level] = []
    for lv in levels:
        if lv.scale_up or lv.is_torus or lv.tier.topology != "switch":
            total = (
                total + _network_ring(run, size) + level_reduce_scatter(lv, size / lv.inner_ranks)
            )
            run = []
        else:
            run.append(lv)
    return total + _network_ring(run, size)


def _network_ring(run: list[Level], size: FloatArray) -> Cost:
    """Reduce-scatter on one ring per rail over consecutive switched network levels: the
    ``r`` ranks of a scale-up domain each lead a ring of ``m`` members (one per domain) on
    ``S / r``. Level ``k`` carries the ring edges whose outermost crossed tier is ``k`` (as
    :func:`_flat_ring`) and offers ``r_{k-1} / r`` of the rail's per-device bandwidth
    ``B_k``: the shares of the rail's ranks inside one tier-``(k-1)`` domain."""
    if not run:
        return Cost(0.0, 0.0, 0.0)
    if len(run) == 1:
        return level_reduce_scatter(run[0], size / run[0].inner_ranks)
    rails = run[0].inner_ranks
    members = run[-1].inner_ranks * run[-1].factor / rails
    steps = (members - 1.0) / members
    total = Cost(0.0, 0.0, 0.0)
    bottleneck = np.full(np.shape(size), np.inf)
    for lv in run:
        d_in = members * rails / lv.inner_ranks
        d_out = d_in / lv.factor
        edges = np.where(d_in > 1, d_in, 0.0) - np.where(d_out > 1, d_out, 0.0)
        total = total + hop_cost(lv, steps * edges)
        rate = np.where(lv.active, lv.inner_ranks / rails * lv.bandwidth(), np.inf)
        bottleneck = np.minimum(bottleneck, rate)
    return total + Cost(0.0, 0.0, steps * (size / rails) / bottleneck)


def _sum(costs: Iterable[Cost]) -> Cost:
    total = Cost(0.0, 0.0, 0.0)
    for c in costs:
        total = total + c
    return total


def _only_active(level: Level, cost: Cost) -> Cost:
    """The cost where the level is crossed, 0 elsewhere."""
    on = level.active
    return Cost(
        np.where(on, cost.up_latency_s, 0.0),
        np.where(on, cost.out_latency_s, 0.0),
        np.where(on, cost.transfer_s, 0.0),
    )


def _flat_ring(
    levels: tuple[Level, ...],
    n: FloatArray,
    size: FloatArray,
    *,
    passes: int,
    bus_factor: float | None = None,
) -> Cost:
    """One ring through all ranks in device order. Hops whose outermost tier is k:
    ``D_{k-1} - D_k`` with ``D_k`` the number of tier-k domains spanned (NCCL's
    ``nsteps - nInterSteps`` split, tuning.cc). Each tier-k boundary is crossed by
    ``r_{k-1}`` channels, one per rail."""
    bottleneck = np.full(n.shape, np.inf)
    total = Cost(0.0, 0.0, 0.0)
    steps = passes * (n - 1.0) / n
    for lv in levels:
        outer = lv.inner_ranks * lv.factor
        d_in, d_out = n / lv.inner_ranks, n / outer
        hops = np.where(d_in > 1, d_in, 0.0) - np.where(d_out > 1, d_out, 0.0)
        total = total + hop_cost(lv, steps * hops)
        rate = np.where(lv.active, lv.inner_ranks * lv.bandwidth(), np.inf)
        bottleneck = np.minimum(bottleneck, rate)
    factor = steps if bus_factor is None else bus_factor
    return total + Cost(0.0, 0.0, factor * size / bottleneck)


def _tree(levels: tuple[Level, ...], size: FloatArray) -> Cost:
    """NCCL all_reduce tree: chain inside the node (tier 0), double binary tree of depth
    ``ceil(log2)`` of the nodes across the outer tiers, up and down (each outer tier takes
    its share of that depth, so splitting the nodes into pods adds no level); ``2 S / B`` at
    the slowest boundary, at 90% of the ring's bandwidth (tuning.cc: ``busBw * .9``)."""
    total = Cost(0.0, 0.0, 0.0)
    bottleneck = np.full(size.shape, np.inf)
    nodes = np.ones_like(size)
    for lv in levels:
        if lv.index == 0:
            depth = lv.factor - 1.0
        else:
            # 1e-9: pods of 384 nodes x 16/3 pods must give log2 2048 = 11, not 11 + ulp
            depth = np.ceil(np.log2(nodes * lv.factor) - 1e-9) - np.ceil(np.log2(nodes) - 1e-9)
            nodes = nodes * lv.factor
        total = total + hop_cost(lv, 2.0 * depth)
        rate = np.where(lv.active, lv.inner_ranks * lv.bandwidth(), np.inf)
        bottleneck = np.minimum(bottleneck, rate)
    return total + Cost(0.0, 0.0, 2.0 * size / (_TREE_BW * bottleneck))


def _all_to_all(levels: tuple[Level, ...], size: FloatArray, n: FloatArray) -> Cost:
    """Pairwise exchange: tiers work concurrently, the slowest bounds the transfer."""
    total = Cost(0.0, 0.0, 0.0)
    slowest = np.zeros(size.shape)
    for lv in levels:
        hops, s_per_byte = level_all_to_all_s_per_byte(lv)
        leaving = size * lv.inner_ranks * (lv.factor - 1.0) / n
        total = total + hop_cost(lv, np.where(lv.active, hops, 0.0))
        slowest = np.maximum(slowest, np.where(lv.active, leaving * s_per_byte, 0.0))
    return total + Cost(0.0, 0.0, slowest)
