"""Data-parallel and ZeRO/FSDP communication of one training step per device, and what of it
overlaps with compute (rank order and collective sizes as :mod:`cost_models.train.comm`).

* Data-parallel gradient reduction overlaps the backward pass of the last micro-batch
  (bucketed ``overlap_grad_reduce``, PyTorch DDP/FSDP); the ZeRO-1/2 parameter all-gather
  overlaps the first forward (``overlap_param_gather``); ZeRO-3/FSDP gathers each
  micro-batch's parameters during the previous layer's compute (prefetch) and reduce-
  scatters gradients during backward. Only the part longer than the window is exposed.
  Under pipelining, FSDP gathers a stage's parameters once per step and reduce-scatters the
  accumulated gradients once, after the last micro-batch (see :mod:`cost_models.train.memory`):
  the ZeRO-1/2 pattern.
* Hybrid sharding (``dp_replicate`` > 1): ZeRO shards over ``dp * cp / dp_replicate``
  consecutive DP ranks (one replica, e.g. one TPU pod or one node group) and the replicas,
  ``tp * dp * cp / dp_replicate`` devices apart, all-reduce their gradient shards once per
  step, overlapping the last micro-batch's backward like the DP reduction (PyTorch FSDP
  ``HYBRID_SHARD``: reduce-scatter within, all-reduce across, Zhao et al. 2023, VLDB, section
  3.2.2; PaLM, arXiv 2204.02311, section 4: gradients exchanged between the two pods once per
  step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cost_models.efficiency import memory_time_s
from cost_models.plan_batch import PlanBatch
from cost_models.sharding import expert_share
from cost_models.train.calibration import Efficiency
from cost_models.train.comm import Op, collective_s, exposed
from cost_models.train.ops import StageShape
from hw_profiles.types import System
from search_spaces.counts import ArchBatch, expert_params, non_embedding_params

__all__ = ["PARAM_BYTES", "LocalParams", "dp_comm_exposed"]

FloatArray = npt.NDArray[np.float64]

PARAM_BYTES = 2.0  # bf16 parameters gathered by ZeRO/FSDP


@dataclass(frozen=True, kw_only=True)
class LocalParams:
    """Parameters held by one device before ZeRO sharding, and the DP groups that shard them."""

    dense: FloatArray  # non-expert parameters on the device (TP/PP sharded)
    tables: FloatArray  # the embedding and LM-head tables among them
    expert: FloatArray  # routed-expert parameters on the device (EP/ETP/PP sharded)
    dense_group: FloatArray  # dp * cp / dp_replicate: the ranks one ZeRO shard set spans
    expert_group: FloatArray  # dp * cp * tp / (ep * etp * dp_replicate)
    replicas: FloatArray  # dp_replicate: copies of the sharded state

    @classmethod
    def of(cls, arch: ArchBatch, plan: PlanBatch, shape: StageShape) -> LocalParams:
        stage_frac = shape.layers / arch.num_layers
        body = non_embedding_params(arch)
        experts = expert_params(arch)
        # embedding tables: input on the first stage, output on the last; both when pp = 1
        tables = arch.vocab_size * arch.d_model * np.where(plan.pp > 1, 1.0, 2.0 - arch.tied)
        return cls(
            dense=((body - experts) * stage_frac + tables) / shape.tp,
            tables=tables / shape.tp,
            expert=experts * stage_frac * expert_share(arch.num_experts, plan.ep) / shape.etp,
            dense_group=plan.dp * plan.cp / plan.dp_replicate,
            expert_group=plan.dp * plan.cp * shape.tp / (plan.ep * shape.etp * plan.dp_replicate),
            replicas=plan.dp_replicate,
        )


def dp_comm_exposed(
    params: LocalParams,
    plan: PlanBatch,
    *,
    system: System,
    fwd_mb_s: FloatArray,
    bwd_mb_s: FloatArray,
    units: FloatArray,
    overlap_efficiency: Efficiency,
    grad_bytes: float = 4.0,
    dp_overlap: bool = True,
    fsdp_prefetch: bool = True,
    collectives_per_unit: float = 1.0,
    per_rank_copies: bool = False,
) -> FloatArray:
    """Exposed data-parallel / ZeRO communication of one step (see the module docstring).

    ``units`` is the number of ZeRO-3/FSDP units on the stage (one per transformer layer,
    as torchtitan, llm-foundry and FSDP's ``transformer_auto_wrap_policy`` wrap them);
    each unit issues ``collectives_per_unit`` gathers per pass (1 for FSDP's flat
    parameter; one per parameter tensor for a per-parameter implementation), so the
    collectives' latency is paid per unit and per tensor. ``per_rank_copies``: the stack hands
    each collective one tensor per rank, so every ZeRO-3 gather and reduce-scatter also
    copies its ``group`` shards one by one (:func:`_per_rank_copies_s`)."""
    dense_stride = plan.tp
    exp_stride = plan.ep * np.where(
        plan.ep > 1, 1.0, plan.tp
    )  # expert-DP ranks lie outside the EP group

    z = plan.zero
    once_per_step = (z < 3) | (plan.pp > 1)  # ZeRO-1/2, and FSDP under pipelining
    is0, is12 = z == 0, (z > 0) & once_per_step
    is3 = ~is0 & ~once_per_step

    def both(
        op: Op,
        bytes_per_param: float,
        rows: npt.NDArray[np.bool_],
        pieces: FloatArray | float = 1.0,
    ) -> FloatArray:
        """``pieces`` collectives of equal size instead of one, summed; only on ``rows``."""
        return pieces * (
            collective_s(
                system,
                op,
                size_bytes=np.where(rows, params.dense * bytes_per_param / pieces, 0.0),
                group=params.dense_group,
                stride=dense_stride,
            )
            + collective_s(
                system,
                op,
                size_bytes=np.where(rows, params.expert * bytes_per_param / pieces, 0.0),
                group=params.expert_group,
                stride=exp_stride,
            )
        )

    e = overlap_efficiency
    window = 1.0 if dp_overlap else 0.0  # no overlap: the reduction waits for the backward
    grad_ar = both("all_reduce", grad_bytes, is0)
    zero0 = exposed(grad_ar, window * bwd_mb_s, e)
    zero12 = exposed(both("reduce_scatter", grad_bytes, is12), window * bwd_mb_s, e) + exposed(
        both("all_gather", PARAM_BYTES, is12), window * fwd_mb_s, e
    )
    calls = units * collectives_per_unit

    def copies(bytes_per_param: float) -> FloatArray:
        if not per_rank_copies:
            return np.zeros_like(params.dense_group)
        return collectives_per_unit * _per_rank_copies_s(
            params, is3, system, bytes_per_call=bytes_per_param / calls
        )

    zero3 = plan.num_microbatches * _zero3_microbatch_s(
        both("all_gather", PARAM_BYTES, is3, calls) / units + copies(PARAM_BYTES),
        both("reduce_scatter", grad_bytes, is3, calls) / units + copies(grad_bytes),
        regather=plan.recompute == 2,
        fwd_unit_s=fwd_mb_s / units,
        bwd_unit_s=bwd_mb_s / units,
        units=units,
        efficiency=e,
        prefetch=fsdp_prefetch,
    )
    sharded = np.where(is0, zero0, np.where(once_per_step, zero12, zero3))
    return sharded + exposed(
        _replica_all_reduce_s(params, system, grad_bytes, dense_stride, exp_stride),
        window * bwd_mb_s,
        e,
    )


def _per_rank_copies_s(
    params: LocalParams,
    rows: npt.NDArray[np.bool_],
    system: System,
    *,
    bytes_per_call: FloatArray,
) -> FloatArray:
    """Per-rank copies of one collective call over the dense group and one over the expert
    group, each call moving ``bytes_per_call`` per held parameter. ``torch.distributed.
    all_gather`` and ``reduce_scatter`` called with a list of tensors, one per rank, run NCCL on
    a flattened buffer and copy each rank's shard out of it (all-gather) or into it
    (reduce-scatter) with its own ``copy_``: ``group`` copies per call (PyTorch
    ``ProcessGroupNCCL.cpp`` ``allgather`` and ``reduce_scatter``, the post and pre hooks;
    ``_all_gather_base`` was added to avoid them). A copy is a memory-bound kernel: its bytes
    read and written at the achieved HBM bandwidth, at least the device's launch gap."""
    out: FloatArray = np.zeros_like(params.dense_group)
    for held, group in ((params.dense, params.dense_group), (params.expert, params.expert_group)):
        shard_bytes = held * bytes_per_call / np.maximum(group, 1.0)
        one = memory_time_s(system.device, bytes_moved=2.0 * shard_bytes)
        out = out + np.where(rows & (held > 0) & (group > 1), group * one, 0.0)
    return out


def _replica_all_reduce_s(
    params: LocalParams,
    system: System,
    grad_bytes: float,
    dense_stride: FloatArray,
    exp_stride: FloatArray,
) -> FloatArray:
    """Hybrid sharding: every replica all-reduces its gradient shard with the same shard of
    the other replicas, which lie one whole shard group apart (0 s with one replica)."""
    out: FloatArray = np.zeros_like(params.replicas)
    for held, group, stride in (
        (params.dense, params.dense_group, dense_stride),
        (params.expert, params.expert_group, exp_stride),
    ):
        shard = held / group * grad_bytes
        out = out + collective_s(
            system, "all_reduce", size_bytes=shard, group=params.replicas, stride=stride * group
        )
    return out


def _zero3_microbatch_s(
    gather_unit_s: FloatArray,
    scatter_unit_s: FloatArray,
    *,
    regather: npt.NDArray[np.bool_],
    fwd_unit_s: FloatArray,
    bwd_unit_s: FloatArray,
    units: FloatArray,
    efficiency: Efficiency,
    prefetch: bool,
) -> FloatArray:
    """Exposed ZeRO-3/FSDP communication of one micro-batch. Forward gathers each unit;
    backward gathers it again (parameters are resharded after forward; twice under full
    recompute, whose forward re-runs inside backward) and reduce-scatters its gradients.
    With prefetch the next unit's collectives run during this unit's compute (Zhao et al.
    2023, "PyTorch FSDP", VLDB, section 3.3.1): only the first unit's and the part longer
    than a unit's compute are exposed. Without it every gather is on the critical path and
    only the gradient reduce-scatter overlaps the next unit's backward."""
    bwd_gather = gather_unit_s * np.where(regather, 2.0, 1.0)
    if prefetch:
        fwd = gather_unit_s + (units - 1.0) * exposed(gather_unit_s, fwd_unit_s, efficiency)
        per_bwd = bwd_gather + scatter_unit_s
        bwd = per_bwd + (units - 1.0) * exposed(per_bwd, bwd_unit_s, efficiency)
        out: FloatArray = fwd + bwd
        return out
    scatter = scatter_unit_s + (units - 1.0) * exposed(scatter_unit_s, bwd_unit_s, efficiency)
    out = units * (gather_unit_s + bwd_gather) + scatter
    return out
