"""Communication of one micro-batch per device (TP, CP, EP, PP), and what of it overlaps.

Rank order follows Megatron-Core's default ``tp-cp-ep-dp-pp`` (innermost first): a TP group
is ``tp`` consecutive devices, CP ranks are ``tp`` apart, DP ranks ``tp*cp`` apart and
pipeline neighbours ``tp*cp*dp`` apart; the collectives model picks the network tier from
group size and stride. Sizes follow nccl-tests conventions (see
:func:`cost_models.network.collectives.collective_time_s`).

What overlaps (stated, because frameworks differ):

* TP collectives, pipeline sends and expert all-to-alls are on the critical path (Megatron
  issues them between the dependent GEMMs) unless the options say the framework overlaps
  them (``tp_overlap``: userbuffer TP overlap; ``ep_overlap``: batch-level A2A overlap).
* Context-parallel KV exchange overlaps the attention of the previous ring step (Megatron-
  Core ring attention): only the part longer than the attention compute is exposed.
* Data-parallel and ZeRO/FSDP communication, once per step or per layer: see
  :mod:`cost_models.train.dp_comm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from cost_models.plan_batch import PlanBatch
from cost_models.train.calibration import Efficiency
from cost_models.train.ops import ACT_BYTES, StageShape
from hw_profiles.types import System
from search_spaces.counts import (
    ArchBatch,
    qk_head_dim,
    v_head_dim,
)

__all__ = ["MicrobatchComm", "Op", "collective_s", "exposed", "microbatch_comm"]

FloatArray = npt.NDArray[np.float64]
Op = Literal["all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "p2p"]


def collective_s(
    system: System,
    op: Op,
    *,
    size_bytes: FloatArray,
    group: FloatArray,
    stride: FloatArray | float = 1.0,
) -> FloatArray:
    """Time of one collective; zero where the group is a single device or nothing moves."""
    from cost_models.network.collectives import collective_time_s

    g = np.asarray(group, dtype=np.float64)
    size = np.broadcast_to(np.asarray(size_bytes, dtype=np.float64), g.shape)
    strides = np.broadcast_to(np.asarray(stride, dtype=np.float64), g.shape)
    out = np.zeros(g.shape)
    rows = np.flatnonzero((g > 1) & (size > 0))  # only the rows where something moves
    if rows.size:
        t = collective_time_s(
            system, op=op, size_bytes=size[rows], group_size=g[rows], stride=strides[rows]
        )
        out[rows] = np.asarray(t, dtype=np.float64)
    return out


def exposed(comm_s: FloatArray, window_s: FloatArray, efficiency: Efficiency) -> FloatArray:
    """Communication left on the critical path when ``comm_s`` overlaps a compute window:
    ``efficiency`` of the overlapped part is hidden (1 = perfect overlap)."""
    return comm_s - efficiency * np.minimum(comm_s, np.maximum(window_s, 0.0))


@dataclass(frozen=True, kw_only=True)
class MicrobatchComm:
    """Exposed communication of one micro-batch on the slowest stage (forward + backward +
    recompute)."""

    tp_s: FloatArray
    ep_s: FloatArray
    cp_s: FloatArray
    pp_s: FloatArray


def microbatch_comm(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    system: System,
    imbalance: float,
    attn_fwd_s: FloatArray,
    attn_bwd_s: FloatArray,
    compute_s: FloatArray,
    overlap_efficiency: Efficiency,
    ep_overlap: bool,
    tp_overlap: bool,
    max_nodes: int = 0,
) -> MicrobatchComm:
    """``compute_s`` is the micro-batch's compute (the window an overlapped all-to-all hides
    behind); ``overlap_efficiency`` the hidden fraction of overlapped communication."""
    full = (plan.recompute == 2).astype(np.float64)
    passes = 2.0 + full  # forward, backward, and a second forward under full recompute
    act = shape.tokens * arch.d_model * ACT_BYTES
    tp_s = _tp_comm_s(arch, plan, shape, system=system, act_bytes=act) * passes
    ep_s = _ep_comm_s(arch, plan, shape, system=system, imbalance=imbalance, max_nodes=max_nodes)
    ep_s = ep_s * passes
    if tp_overlap:
        tp_s = exposed(tp_s, compute_s, overlap_efficiency)
    if ep_overlap:
        ep_s = exposed(ep_s, compute_s, overlap_efficiency)
    ring = _cp_ring_s(arch, plan, shape, system=system)
    e = overlap_efficiency
    cp_s = exposed(ring, attn_fwd_s, e) * (1.0 + full) + exposed(2.0 * ring, attn_bwd_s, e)
    pp_s = _pp_comm_s(plan, shape, system=system, act_bytes=act)
    return MicrobatchComm(tp_s=tp_s, ep_s=ep_s, cp_s=cp_s, pp_s=pp_s)


def _tp_comm_s(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    system: System,
    act_bytes: FloatArray,
) -> FloatArray:
    """TP: one collective per residual block per layer per pass: two a layer (after attention
    and after the FFN; Shoeybi et al. 2019, Fig. 4), one in a parallel block; with SP each
    all-reduce becomes reduce-scatter + all-gather (Korthikanti et al. 2022, section 4.2.2).
    Per pass."""
    t = shape.tp
    ar = collective_s(system, "all_reduce", size_bytes=act_bytes, group=t)
    ag_rs = collective_s(system, "all_gather", size_bytes=act_bytes, group=t) + collective_s(
        system, "reduce_scatter", size_bytes=act_bytes, group=t
    )
    out: FloatArray = np.where(plan.sp > 0, ag_rs, ar) * arch.blocks_per_layer * shape.layers
    return out


def _ep_comm_s(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    system: System,
    imbalance: float,
    max_nodes: int,
) -> FloatArray:
    """EP: dispatch and combine all-to-all per MoE layer per pass, each rank sending its
    tokens x top_k hidden vectors (the busiest rank sends ``imbalance`` times the mean).
    Per pass."""
    routed = shape.tokens * shape.etp / shape.tp * arch.top_k * arch.d_model * ACT_BYTES
    routed = routed * imbalance
    if max_nodes > 0:
        # node-limited routing (DeepSeek-V3, arXiv 2412.19437 section 2.1.2): a token reaches
        # at most `max_nodes` nodes and the dispatcher sends one copy per node, forwarded over
        # NVLink inside it (DeepEP): the cross-node bytes shrink by min(M, nodes) / top_k
        nodes = np.maximum(plan.ep * shape.etp / system.scale_up_devices, 1.0)
        cut = np.minimum(np.minimum(float(max_nodes), nodes) / np.maximum(arch.top_k, 1.0), 1.0)
        routed = routed * np.where(nodes > 1.0, cut, 1.0)
    a2a = collective_s(system, "all_to_all", size_bytes=routed, group=plan.ep, stride=shape.etp)
    out: FloatArray = a2a * 2.0 * shape.moe_layers
    return out


def _cp_ring_s(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, *, system: System
) -> FloatArray:
    """CP ring attention: cp-1 steps per layer each passing the local K and V shard, per
    forward; backward passes K, V and their gradients (twice this; Liu et al. 2023, Ring
    Attention, arXiv 2310.01889)."""
    t = shape.tp
    kv_heads = np.where(arch.is_mla, arch.num_heads, arch.num_kv_heads)
    head = qk_head_dim(arch) + v_head_dim(arch)
    kv = shape.tokens * np.maximum(kv_heads / t, 1.0) * head * ACT_BYTES
    step = collective_s(system, "p2p", size_bytes=kv, group=plan.cp, stride=t)
    out: FloatArray = (plan.cp - 1.0) * step * shape.layers
    return out


def _pp_comm_s(
    plan: PlanBatch, shape: StageShape, *, system: System, act_bytes: FloatArray
) -> FloatArray:
    """PP: one activation send forward and one gradient send backward per micro-batch per
    virtual stage. Each TP rank sends only its 1/tp shard and the receiving stage all-gathers
    it over the node's network (NAR21 section 4.1, scatter/gather optimisation; with SP the
    activations are already sharded)."""
    t = shape.tp
    regather = collective_s(
        system, "all_gather", size_bytes=np.where(plan.sp > 0, 0.0, act_bytes), group=t
    )
    send = regather + collective_s(
        system,
        "p2p",
        size_bytes=act_bytes / t,
        group=np.where(plan.pp > 1, 2.0, 1.0),
        stride=t * plan.cp * plan.dp,
    )
    out: FloatArray = 2.0 * plan.vpp * send
    return out
