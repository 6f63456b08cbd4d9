"""Training step time, throughput, MFU/HFU and memory, vectorised over (architecture, plan)
pairs.

Step time per device (Megatron-style 1F1B pipeline, Narayanan et al. 2021, arXiv 2104.04473,
section 2.2):

    step = m * (compute + tp + ep + cp)_microbatch        per-stage work of m micro-batches
         + (pp - 1) / vpp * (compute + tp + ep + cp)_mb     pipeline fill and drain (bubble)
         + m * pp_p2p_mb                                    activation sends
         + exposed DP/ZeRO communication                    see cost_models.train.dp_comm
         + optimizer step                                   memory-bound, "other"

so ``time_breakdown_s`` sums to ``step_time_s``. The bubble is (p-1)/m of the ideal time for
1F1B and (p-1)/(v*m) for the interleaved schedule (NAR21, section 2.2.1-2.2.2).

MFU counts *model* FLOPs: 3 x the forward matmul FLOPs of the active parameters (LM head
included, embedding lookup excluded) plus 3 x full (non-causal) attention, no recompute
(PaLM, arXiv 2204.02311, appendix B). HFU counts what the hardware runs: causal flash
attention (its backward at 2.5x forward), or full attention when unfused, plus recompute.
Both are relative to the dense bf16/fp16 peak (for FP8 runs too, as NVIDIA's recipes report).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from cost_models.efficiency import memory_time_s
from cost_models.options import TrainOptions
from cost_models.plan import TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.train.calibration import (
    IDENTITY,
    Calibration,
    CalibrationArrays,
    load_calibration,
)
from cost_models.train.comm import microbatch_comm
from cost_models.train.dp_comm import LocalParams, dp_comm_exposed
from cost_models.train.memory import train_memory
from cost_models.train.memory_ops import stage_ops
from cost_models.train.ops import FLASH_BWD_FLOPS_RATIO, OpCost, StageShape
from cost_models.train.recompute import selective_flops_per_token, selective_share
from hw_profiles.types import Device, System
from search_spaces.counts import (
    ArchBatch,
    attention_flops_per_token,
    lm_head,
    matmul_flops_per_token,
)

__all__ = [
    "OPTIMIZER_STEP_BYTES",
    "TIME_KEYS",
    "TrainCost",
    "hardware_flops_per_token",
    "mfu_peak_flops_per_s",
    "model_flops_per_token",
    "time_breakdown",
    "train_cost",
]

FloatArray = npt.NDArray[np.float64]
TIME_KEYS: tuple[str, ...] = (
    "compute",
    "tp_comm",
    "pp_bubble",
    "pp_comm",
    "dp_comm",
    "ep_comm",
    "cp_comm",
    "other",
)
# Fused Adam reads fp32 weight, gradient, m and v (16 bytes) and writes weight, m, v (12)
# and the bf16 model copy (2) per parameter (counted from the tensors it touches).
OPTIMIZER_STEP_BYTES = 30.0
_NOT_RECOMPUTED = ("lm_head", "cross_entropy")


@dataclass(frozen=True, kw_only=True)
class TrainCost:
    """Costs of N (architecture, plan) pairs; every array has length N."""

    step_time_s: FloatArray
    tokens_per_s: FloatArray
    tokens_per_s_per_device: FloatArray
    mfu: FloatArray
    hfu: FloatArray
    model_flops_per_token: FloatArray
    hardware_flops_per_token: FloatArray
    memory_per_device_bytes: FloatArray
    fits: npt.NDArray[np.bool_]
    time_breakdown_s: dict[str, FloatArray]
    memory_breakdown_bytes: dict[str, FloatArray]
    ops: list[OpCost] = field(default_factory=list)


def mfu_peak_flops_per_s(device: Device, dtype: str) -> float:
    """The peak MFU and HFU are quoted against: bf16/fp16, also for FP8 training."""
    return device.peak("fp16" if dtype == "fp16" else "bf16")


def model_flops_per_token(arch: ArchBatch, *, seq_len: int) -> FloatArray:
    """6 x active matmul parameters + 3 x full attention per token (no recompute)."""
    full = attention_flops_per_token(arch, seq_len=seq_len, convention="full")
    return 3.0 * (matmul_flops_per_token(arch) + full)


def hardware_flops_per_token(
    arch: ArchBatch, plan: PlanBatch, *, seq_len: int, options: TrainOptions
) -> FloatArray:
    mm = matmul_flops_per_token(arch)
    head = 2.0 * lm_head(arch).active_params
    if options.attention_kernel != "unfused":
        attn_fwd = attention_flops_per_token(arch, seq_len=seq_len, convention="causal")
        attn = (1.0 + FLASH_BWD_FLOPS_RATIO) * attn_fwd
    else:
        attn_fwd = attention_flops_per_token(arch, seq_len=seq_len, convention="full")
        attn = 3.0 * attn_fwd
    rc = plan.recompute
    selective = selective_flops_per_token(
        arch, attention_fwd_flops=attn_fwd, policy=options.selective_recompute
    )
    extra = np.where(rc == 2, mm - head + attn_fwd, np.where(rc == 1, selective, 0.0))
    # each multi-token prediction module: one more layer, its 2d -> d projection and another
    # pass through the output head
    layer = (3.0 * (mm - head) + attn + extra) / arch.num_layers
    mtp = layer + 3.0 * (head + 4.0 * arch.d_model**2)
    out: FloatArray = 3.0 * mm + attn + extra + arch.mtp_layers * mtp
    return out


def _microbatch_compute(
    ops: list[OpCost], plan: PlanBatch, arch: ArchBatch, options: TrainOptions
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Forward, backward, recompute and attention (fwd, bwd) seconds of one micro-batch."""
    zero = np.zeros_like(plan.tp)
    fwd, bwd, rc_full, rc_sel, attn_f, attn_b = zero, zero, zero, zero, zero, zero
    for op in ops:
        fwd = fwd + op.fwd_s
        bwd = bwd + op.bwd_s
        if op.name not in _NOT_RECOMPUTED:
            rc_full = rc_full + op.fwd_s
        if op.recompute == "selective":  # the attention core
            attn_f = attn_f + op.fwd_s
            attn_b = attn_b + op.bwd_s
        rc_sel = rc_sel + selective_share(arch, op.name, options.selective_recompute) * op.fwd_s
    rc = np.where(plan.recompute == 2, rc_full, np.where(plan.recompute == 1, rc_sel, 0.0))
    return fwd, bwd, rc, attn_f, attn_b


def time_breakdown(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    ops: list[OpCost],
    params: LocalParams,
    *,
    system: System,
    options: TrainOptions,
    calibration: Calibration | CalibrationArrays,
) -> dict[str, FloatArray]:
    """Seconds per step by :data:`TIME_KEYS` (after overlap; they sum to the step time).
    ``params`` is :meth:`LocalParams.of` the same ``arch``, ``plan`` and ``shape``."""
    slow = 1.0 / calibration.fraction(system.device.name, system.device.kind)
    times = _microbatch_compute(ops, plan, arch, options)
    fwd, bwd, rc, attn_f, attn_b = (x * slow for x in times)
    e = calibration.overlap_efficiency
    comm = microbatch_comm(
        arch,
        plan,
        shape,
        system=system,
        imbalance=options.moe_imbalance,
        attn_fwd_s=attn_f,
        attn_bwd_s=attn_b,
        compute_s=fwd + bwd + rc,
        overlap_efficiency=e,
        ep_overlap=options.ep_overlap,
        tp_overlap=options.tp_overlap,
        max_nodes=options.moe_max_nodes,
    )
    m = plan.num_microbatches
    per_mb = fwd + bwd + rc + comm.tp_s + comm.ep_s + comm.cp_s
    dp_s = dp_comm_exposed(
        params,
        plan,
        system=system,
        fwd_mb_s=fwd,
        bwd_mb_s=bwd + rc,
        units=shape.layers,
        overlap_efficiency=e,
        grad_bytes=options.grad_bytes,
        dp_overlap=options.dp_overlap,
        fsdp_prefetch=options.fsdp_prefetch,
        collectives_per_unit=options.zero3_collectives_per_layer,
        per_rank_copies=options.zero3_per_rank_copies,
    )
    opt_params = np.where(
        plan.zero >= 1,
        params.dense / params.dense_group + params.expert / params.expert_group,
        params.dense + params.expert,
    )
    return {
        "compute": m * (fwd + bwd + rc),
        "tp_comm": m * comm.tp_s,
        "pp_bubble": (plan.pp - 1.0) / plan.vpp * per_mb,
        "pp_comm": np.where(plan.pp > 1, m * comm.pp_s, 0.0),
        "dp_comm": dp_s,
        "ep_comm": m * comm.ep_s,
        "cp_comm": m * comm.cp_s,
        "other": memory_time_s(system.device, bytes_moved=OPTIMIZER_STEP_BYTES * opt_params),
    }


def train_cost(
    arch: ArchBatch,
    plan: PlanBatch,
    *,
    system: System,
    workload: TrainWorkload,
    options: TrainOptions | None = None,
    calibration: Calibration | CalibrationArrays | None = None,
    keep_ops: bool = False,
    memory_headroom: float = 1.0,
) -> TrainCost:
    """Step time, throughput and memory for every (architecture, plan) pair.

    ``arch`` and ``plan`` have equal length N (one candidate per index); the system's device
    count is not checked here (the planner and :func:`cost_models.estimate.estimate` do).
    ``calibration`` defaults to the shipped one (``options.calibrated``) or the identity."""
    opts = options or TrainOptions()
    cal = calibration or (load_calibration() if opts.calibrated else IDENTITY)
    device, seq = system.device, workload.seq_len
    shape = StageShape.of(arch, plan, seq_len=seq)
    ops = stage_ops(arch, plan, device=device, seq_len=seq, dtype=workload.dtype, options=opts)
    params = LocalParams.of(arch, plan, shape)
    breakdown = time_breakdown(
        arch, plan, shape, ops, params, system=system, options=opts, calibration=cal
    )
    step = sum((breakdown[k] for k in TIME_KEYS), np.zeros_like(plan.tp))
    devices = plan.tp * plan.pp * plan.dp * plan.cp
    tokens_per_s = plan.global_batch * seq / step
    model = model_flops_per_token(arch, seq_len=seq)
    hw = hardware_flops_per_token(arch, plan, seq_len=seq, options=opts)
    peak = mfu_peak_flops_per_s(device, workload.dtype) * devices
    mem = train_memory(arch, plan, shape, params, dtype=workload.dtype, options=opts)
    total_mem = sum((v for v in mem.values()), np.zeros_like(plan.tp))
    slow = 1.0 / cal.fraction(device.name, device.kind)
    return TrainCost(
        step_time_s=step,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_device=tokens_per_s / devices,
        mfu=tokens_per_s * model / peak,
        hfu=tokens_per_s * hw / peak,
        model_flops_per_token=model,
        hardware_flops_per_token=hw,
        memory_per_device_bytes=total_mem,
        # fits: within ``memory_headroom`` of device memory (1.0 = all of it; the CLI and
        # experiments keep 10% free for allocator fragmentation and buffers)
        fits=total_mem <= memory_headroom * device.capacity_bytes,
        time_breakdown_s=breakdown,
        memory_breakdown_bytes=mem,
        ops=[replace(op, fwd_s=op.fwd_s * slow, bwd_s=op.bwd_s * slow) for op in ops]
        if keep_ops
        else [],
    )
