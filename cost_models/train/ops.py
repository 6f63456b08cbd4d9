"""Per-operation costs of one training micro-batch on one device of the slowest pipeline stage.

Each :class:`OpCost` is one op class summed over the layers a device holds: its hardware
FLOPs and bytes moved in the forward pass and its forward and backward times. The training
model (:mod:`cost_models.train.step`) sums the records; ``nas estimate`` shows them.

Shapes follow Megatron-LM tensor parallelism (Shoeybi et al. 2019, arXiv 1909.08053,
section 3): QKV and FFN-up are column-parallel (output split by ``tp``), attention-out and
FFN-down row-parallel (input split by ``tp``). Context parallelism splits the sequence
(``tokens = micro_batch * seq / cp``). Backward runs two GEMMs per forward GEMM (input
gradient ``M x n -> M x k`` and weight gradient ``k x M -> k x n``), flash-attention backward
does 2.5x its forward FLOPs (Dao 2023, FlashAttention-2, arXiv 2307.08691, section 4.1), and
element-wise backward kernels move twice the forward bytes (read the output gradient and
the saved input, write the input gradient). GEMM and attention records are built here;
memory-bound records and :func:`cost_models.train.memory_ops.stage_ops`, which assembles all of
them, are in :mod:`cost_models.train.memory_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from cost_models.efficiency import (
    attention_time_s,
    gemm_time_s,
    grouped_gemm_time_s,
    memory_time_s,
)
from cost_models.options import TrainOptions
from cost_models.plan_batch import PlanBatch
from cost_models.sharding import TP_SPLIT, experts_per_rank, split_widths
from hw_profiles.types import Device
from search_spaces.counts import ArchBatch, matmuls, qk_head_dim, v_head_dim

__all__ = [
    "ACT_BYTES",
    "FLASH_BWD_FLOPS_RATIO",
    "OpCost",
    "StageShape",
    "attention_ops",
    "gemm_ops",
]

FloatArray = npt.NDArray[np.float64]
OpKind = Literal["gemm", "attention", "memory"]
RecomputeSet = Literal["full", "selective"]

ACT_BYTES = 2.0  # bf16/fp16 activations (also in FP8 recipes: only GEMM inputs are FP8)
FLASH_BWD_FLOPS_RATIO = 2.5  # FlashAttention-2, arXiv 2307.08691, section 4.1


@dataclass(frozen=True, kw_only=True)
class OpCost:
    """One op class on one device for one micro-batch, summed over the stage's layers."""

    name: str
    kind: OpKind
    recompute: RecomputeSet  # re-run under full recompute only, or also under selective
    flops: FloatArray  # forward hardware FLOPs
    bytes_moved: FloatArray  # forward bytes through HBM (memory-bound ops; operands for GEMMs)
    fwd_s: FloatArray
    bwd_s: FloatArray


@dataclass(frozen=True, kw_only=True)
class StageShape:
    """Per-device work sizes of one micro-batch on the slowest pipeline stage."""

    tokens: FloatArray  # tokens per micro-batch on one device (micro_batch * seq / cp)
    tp: FloatArray
    etp: FloatArray  # expert tensor parallelism: 1 when ep > 1 (Megatron-Core default for EP)
    layers: FloatArray  # transformer layers on the device (ceil over pp * vpp chunks)
    moe_layers: FloatArray
    dense_layers: FloatArray
    seq_len: float

    @classmethod
    def of(cls, arch: ArchBatch, plan: PlanBatch, *, seq_len: int) -> StageShape:
        chunks = plan.pp * plan.vpp
        # multi-token prediction blocks count as layers of the pipeline's balanced split
        # (Megatron-Bridge's DeepSeek-V3 layouts give the stage holding MTP and the loss fewer
        # decoder layers: set_deepseek_v3_pipeline_model_parallel_layout)
        layers = np.ceil((arch.num_layers + arch.mtp_layers) / chunks) * plan.vpp
        moe = layers * arch.num_moe_layers / arch.num_layers
        return cls(
            tokens=plan.micro_batch * seq_len / plan.cp,
            tp=plan.tp,
            etp=np.where(plan.ep > 1, 1.0, plan.tp),
            layers=layers,
            moe_layers=moe,
            dense_layers=layers - moe,
            seq_len=float(seq_len),
        )


def _gemm_op(
    device: Device,
    name: str,
    *,
    m: FloatArray,
    n: FloatArray,
    k: FloatArray,
    calls: FloatArray,
    dtype: str,
) -> OpCost:
    fwd = gemm_time_s(device, m=m, n=n, k=k, dtype=dtype, calls=calls)
    bwd = gemm_time_s(device, m=m, n=k, k=n, dtype=dtype, calls=calls) + gemm_time_s(
        device, m=k, n=n, k=m, dtype=dtype, calls=calls
    )
    return OpCost(
        name=name,
        kind="gemm",
        recompute="full",
        flops=2.0 * m * n * k * calls,
        bytes_moved=(m * k + k * n + m * n) * ACT_BYTES * calls,
        fwd_s=fwd,
        bwd_s=bwd,
    )


def gemm_ops(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    device: Device,
    dtype: str,
    imbalance: float,
) -> list[OpCost]:
    """Every weight GEMM of the stage, the LM head included (charged to the slowest stage)."""
    t, tok = shape.tp, shape.tokens
    out: list[OpCost] = []
    per_layer = shape.layers / arch.num_layers
    for mm in matmuls(arch):
        if mm.name.startswith("expert_"):
            continue
        split = TP_SPLIT[mm.name]
        calls = mm.active * per_layer
        k, n = split_widths(split, mm.k, mm.n, t)
        m = tok / np.where(plan.sp > 0, t, 1.0) if split == "rep" else tok
        out.append(_gemm_op(device, mm.name, m=m, n=n, k=k, calls=calls, dtype=dtype))
    out.extend(_expert_ops(arch, plan, shape, device=device, dtype=dtype, imbalance=imbalance))
    out.append(
        _gemm_op(
            device, "lm_head", m=tok, n=arch.vocab_size / t, k=arch.d_model,
            calls=arch.head_passes, dtype=dtype,
        )
    )  # fmt: skip
    if np.any(arch.mtp_layers > 0):  # MTP: [norm(h); norm(emb)] (2 d) projected to d
        d = arch.d_model
        out.append(
            _gemm_op(device, "mtp_proj", m=tok, n=d / t, k=2.0 * d, calls=arch.mtp_layers,
                     dtype=dtype)
        )  # fmt: skip
    return out


def _expert_ops(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    device: Device,
    dtype: str,
    imbalance: float,
) -> list[OpCost]:
    """Routed experts as grouped GEMMs: each of the ``E/ep`` local experts (``ceil(E/ep)``
    with redundant copies, :func:`cost_models.sharding.experts_per_rank`) receives
    ``tokens_per_rank * top_k / local`` tokens (times the imbalance of the busiest rank);
    with ``etp = 1`` the TP ranks dispatch disjoint token shards (Megatron-Core MoE)."""
    groups = experts_per_rank(arch.num_experts, plan.ep)
    rank_tokens = shape.tokens * shape.etp / shape.tp
    m = rank_tokens * arch.top_k / groups * imbalance
    up = (1.0 + arch.gated) * arch.d_expert / shape.etp
    down_k = arch.d_expert / shape.etp
    out: list[OpCost] = []
    for name, n, k in (("expert_up", up, arch.d_model), ("expert_down", arch.d_model, down_k)):
        fwd = grouped_gemm_time_s(device, groups=groups, m=m, n=n, k=k, dtype=dtype)
        bwd = grouped_gemm_time_s(device, groups=groups, m=m, n=k, k=n, dtype=dtype)
        bwd = bwd + grouped_gemm_time_s(device, groups=groups, m=k, n=n, k=m, dtype=dtype)
        layers = shape.moe_layers
        out.append(
            OpCost(
                name=name,
                kind="gemm",
                recompute="full",
                flops=2.0 * groups * m * n * k * layers,
                bytes_moved=groups * (m * k + k * n + m * n) * ACT_BYTES * layers,
                fwd_s=fwd * layers,
                bwd_s=bwd * layers,
            )
        )
    return out


def attention_ops(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, *, device: Device, options: TrainOptions
) -> list[OpCost]:
    """The attention core (QK^T, softmax, AV) of every layer on the device."""
    heads = arch.num_heads / shape.tp
    dqk, dv = qk_head_dim(arch), v_head_dim(arch)
    s, tok, layers = shape.seq_len, shape.tokens, shape.layers
    if options.attention_kernel != "unfused":
        # causal: each query attends to s/2 keys on average; CP's load-balanced split keeps it
        flops = tok * s * heads * (dqk + dv) * layers
        kernel = options.attention_kernel
        fwd = attention_time_s(device, flops=flops, calls=layers, kernel=kernel)
        bwd = attention_time_s(
            device, flops=FLASH_BWD_FLOPS_RATIO * flops, calls=layers, kernel=kernel
        )
        return [
            OpCost(
                name="attention",
                kind="attention",
                recompute="selective",
                flops=flops,
                bytes_moved=np.zeros_like(flops),
                fwd_s=fwd,
                bwd_s=bwd,
            )
        ]
    # unfused: the full S x S scores are computed and masked (Megatron-LM 2021-22)
    seqs = plan.micro_batch * heads
    q_len = s / plan.cp
    qk = grouped_gemm_time_s(device, groups=seqs, m=q_len, n=s, k=dqk)
    av = grouped_gemm_time_s(device, groups=seqs, m=q_len, n=dv, k=s)
    qk_b = grouped_gemm_time_s(device, groups=seqs, m=q_len, n=dqk, k=s) + grouped_gemm_time_s(
        device, groups=seqs, m=s, n=dqk, k=q_len
    )
    av_b = grouped_gemm_time_s(device, groups=seqs, m=q_len, n=s, k=dv) + grouped_gemm_time_s(
        device, groups=seqs, m=s, n=dv, k=q_len
    )
    flops = 2.0 * seqs * q_len * s * (dqk + dv) * layers
    elements = seqs * q_len * s * layers
    # scale-mask-softmax reads and writes the scores (2+2 bytes); dropout reads them, writes
    # the output and a 1-byte mask; backward reads output+gradient and writes the gradient
    drop = 5.0 if options.dropout else 0.0
    sm_fwd = memory_time_s(device, bytes_moved=elements * (4.0 + drop), calls=layers)
    sm_bwd = memory_time_s(device, bytes_moved=elements * (6.0 + drop), calls=layers)
    return [
        OpCost(
            name="attention_bmm",
            kind="gemm",
            recompute="selective",
            flops=flops,
            bytes_moved=np.zeros_like(flops),
            fwd_s=(qk + av) * layers,
            bwd_s=(qk_b + av_b) * layers,
        ),
        OpCost(
            name="softmax",
            kind="memory",
            recompute="selective",
            flops=np.zeros_like(flops),
            bytes_moved=elements * (4.0 + drop),
            fwd_s=sm_fwd,
            bwd_s=sm_bwd,
        ),
    ]
