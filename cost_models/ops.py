"""Per-operation costs of one training micro-batch on one device of the slowest pipeline stage.

Each :class:`OpCost` is one op class summed over the layers a device holds: its hardware
FLOPs and bytes moved in the forward pass and its forward and backward times. The training
model (:mod:`cost_models.train`) sums the records; ``nas estimate`` shows them.

Shapes follow Megatron-LM tensor parallelism (Shoeybi et al. 2019, arXiv 1909.08053,
section 3): QKV and FFN-up are column-parallel (output split by ``tp``), attention-out and
FFN-down row-parallel (input split by ``tp``). Context parallelism splits the sequence
(``tokens = micro_batch * seq / cp``). Backward runs two GEMMs per forward GEMM (input
gradient ``M x n -> M x k`` and weight gradient ``k x M -> k x n``), flash-attention backward
does 2.5x its forward FLOPs (Dao 2023, FlashAttention-2, arXiv 2307.08691, section 4.1), and
element-wise backward kernels move twice the forward bytes (read the output gradient and
the saved input, write the input gradient). GEMM and attention records are built here;
memory-bound records and :func:`cost_models.ops_memory.stage_ops`, which assembles all of
them, are in :mod:`cost_models.ops_memory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from cost_models.efficiency import (
    attention_time_s,
    gemm_time_s,
    grouped_gemm_time_s,
    memory_time_s,
)
from cost_models.plan_batch import PlanBatch
from cost_models.recompute import SELECTIVE_POLICIES, SelectivePolicy
from hw_profiles.types import Device
from search_spaces.counts import ArchBatch, matmuls, qk_head_dim, v_head_dim

FloatArray = npt.NDArray[np.float64]
OpKind = Literal["gemm", "attention", "memory"]
AttentionKernel = Literal["flash", "flash2", "unfused"]
ATTENTION_KERNELS: tuple[str, ...] = get_args(AttentionKernel)
Elementwise = Literal["fused", "eager"]
ELEMENTWISE: tuple[str, ...] = get_args(Elementwise)
RecomputeSet = Literal["full", "selective"]

ACT_BYTES = 2.0  # bf16/fp16 activations (also in FP8 recipes: only GEMM inputs are FP8)
FLASH_BWD_FLOPS_RATIO = 2.5  # FlashAttention-2, arXiv 2307.08691, section 4.1

# Which dimension tensor parallelism splits, per weight class (Megatron-LM column/row
# parallel linear layers). MLA's down-projections are replicated across TP ranks, as in
# Megatron-Core's MLA. Experts are handled as a grouped GEMM below.
TP_SPLIT: dict[str, Literal["col", "row", "rep"]] = {
    "attn_q": "col",
    "attn_q_a": "rep",
    "attn_q_b": "col",
    "attn_kv": "col",
    "attn_kv_a": "rep",
    "attn_kv_b": "col",
    "attn_o": "row",
    "ffn_up": "col",
    "ffn_down": "row",
    "shared_up": "col",
    "shared_down": "row",
    "router": "rep",
}


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Facts about the training software that change its cost (not tuning knobs).

    ``attention_kernel``: ``flash`` (the device's best fused kernel, no S x S matrix; Dao et
    al. 2022), ``flash2`` (FlashAttention-2, e.g. PyTorch SDPA's default flash backend, slower
    than FA3/cuDNN on Hopper; see the device's ``attention_efficiency_fa2``) or ``unfused``
    (Megatron-LM 2021-22: batched GEMMs plus a fused scale-mask-softmax that materialises
    the S x S scores). ``dropout``: dropout after attention and FFN and on the attention
    probabilities (GPT-3-era configs). ``moe_imbalance``: tokens on the busiest expert rank
    over the mean; 1.0 is perfect balance. ``ep_overlap``/``tp_overlap``: the framework hides
    expert all-to-alls / TP collectives behind compute. ``overhead_bytes``: framework memory beyond
    tensors (CUDA context, cuBLAS workspaces, NCCL buffers, allocator slack).
    ``elementwise``: ``fused`` (Megatron/Transformer Engine kernels, or ``torch.compile``) or
    ``eager`` (PyTorch eager mode: each element-wise op its own kernel, see
    :mod:`cost_models.ops_memory`). ``selective_recompute``: what ``recompute: selective``
    re-runs: ``attention`` (the attention core; Korthikanti et al. 2022, Megatron-LM),
    ``alternate_mm`` (torchtitan's op-level selective activation checkpointing) or
    ``mla_up_proj_mlp`` (Megatron-Core recompute modules ``mla_up_proj`` and ``mlp``); see
    :mod:`cost_models.recompute`."""

    attention_kernel: AttentionKernel = "flash"
    dropout: bool = False
    # Switch Transformer (Fedus et al. 2021, arXiv 2101.03961, section 2.2) trains with
    # capacity factors 1.0-1.25; a dropless router's busiest rank sits in that range. We
    # take the midpoint of the evaluated 1.0-1.25 range, an estimate.
    moe_imbalance: float = 1.1
    # Estimate: CUDA context and cuBLAS/cuDNN workspaces (~0.5-1 GB) plus NCCL channel
    # buffers (~0.5-1 GB per process with several communicators); not a measurement.
    overhead_bytes: float = 2.0e9
    # Expert all-to-all hidden behind another micro-batch's compute (Megatron-Core 0.14
    # ``overlap_moe_expert_parallel_comm``; DeepSeek-V3's DualPipe, arXiv 2412.19437 3.2.1)
    ep_overlap: bool = False
    # TP all-gathers/reduce-scatters pipelined with the GEMMs that consume them (Megatron-Core
    # ``--tp-comm-overlap`` with Transformer Engine userbuffers; Wang et al. 2023, ASPLOS,
    # "Overlap communication with dependent computation via decomposition")
    tp_overlap: bool = False
    # Gradient buffer and reduction dtype: 4 = fp32 (Megatron-LM forces fp32 accumulation and
    # reduction for bf16; FSDP reduce_dtype fp32), 2 = bf16 (Megatron-Core
    # ``grad_reduce_in_fp32=False``, as NeMo/Megatron-Bridge performance recipes set it)
    grad_bytes: float = 4.0
    # Node-limited MoE routing: each token goes to at most this many nodes (0 = unlimited;
    # DeepSeek-V3 uses 4, arXiv 2412.19437 section 2.1.2)
    moe_max_nodes: int = 0
    elementwise: Elementwise = "fused"
    selective_recompute: SelectivePolicy = "attention"
    # Calibrated efficiencies (cost_models/data/train_calibration.json) or the identity
    calibrated: bool = True

    def __post_init__(self) -> None:
        if self.attention_kernel not in ATTENTION_KERNELS:
            raise ValueError(
                f"attention_kernel: must be one of {', '.join(ATTENTION_KERNELS)}; "
                f"got {self.attention_kernel!r}"
            )
        if self.elementwise not in ELEMENTWISE:
            raise ValueError(
                f"elementwise: must be one of {', '.join(ELEMENTWISE)}; got {self.elementwise!r}"
            )
        if self.selective_recompute not in SELECTIVE_POLICIES:
            raise ValueError(
                f"selective_recompute: must be one of {', '.join(SELECTIVE_POLICIES)}; "
                f"got {self.selective_recompute!r}"
            )
        if not 1.0 <= self.moe_imbalance <= 4.0:
            raise ValueError(f"moe_imbalance: must lie in [1, 4], got {self.moe_imbalance}")
        if self.grad_bytes not in (2.0, 4.0):
            raise ValueError(f"grad_bytes: must be 2 (bf16) or 4 (fp32), got {self.grad_bytes}")
        if self.overhead_bytes < 0:
            raise ValueError(f"overhead_bytes: must be >= 0, got {self.overhead_bytes}")


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
        layers = np.ceil(arch.num_layers / chunks) * plan.vpp
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
        n = mm.n / t if split == "col" else mm.n
        k = mm.k / t if split == "row" else mm.k
        m = tok / np.where(plan.sp > 0, t, 1.0) if split == "rep" else tok
        out.append(_gemm_op(device, mm.name, m=m, n=n, k=k, calls=calls, dtype=dtype))
    out.extend(_expert_ops(arch, plan, shape, device=device, dtype=dtype, imbalance=imbalance))
    one = np.ones_like(tok)
    out.append(
        _gemm_op(
            device, "lm_head", m=tok, n=arch.vocab_size / t, k=arch.d_model, calls=one, dtype=dtype
        )
    )
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
    """Routed experts as grouped GEMMs: each of the ``E/ep`` local experts receives
    ``tokens_per_rank * top_k * ep / E`` tokens (times the imbalance of the busiest rank);
    with ``etp = 1`` the TP ranks dispatch disjoint token shards (Megatron-Core MoE)."""
    experts = np.maximum(arch.num_experts, 1.0)
    groups = experts / plan.ep
    rank_tokens = shape.tokens * shape.etp / shape.tp
    m = rank_tokens * arch.top_k * plan.ep / experts * imbalance
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


__all__ = [
    "ACT_BYTES",
    "ATTENTION_KERNELS",
    "ELEMENTWISE",
    "FLASH_BWD_FLOPS_RATIO",
    "TP_SPLIT",
    "OpCost",
    "StageShape",
    "TrainOptions",
    "attention_ops",
    "gemm_ops",
]
