"""Per-operation roofline records for one inference phase (prefill or one decode step).

Each record carries FLOPs and HBM bytes *per call and per device* and the number of calls in
the phase (summed over all layers: a single batch traverses every pipeline stage in turn, so
its latency is the sum over stages). :func:`op_times` turns records into time by category;
the sum is the phase time. Vectorised over candidates (numpy arrays), see ``docs/design.md``.

Roofline per op (Williams et al. 2009, CACM 52(4); SOURCES.md "Decode is memory-bound"):
``t = max(t_compute, t_memory) + (1 - overlap) * min(t_compute, t_memory) + kernel_launch_s``
with ``t_compute = flops / (peak * eff)`` and ``t_memory = bytes / (hbm_bw * mem_eff)``;
``overlap`` is 1 (the plain roofline) except for GEMMs, which hide only
:data:`~cost_models.inference.calibration.INFERENCE_GEMM_OVERLAP` of the shorter term. The fixed
per-kernel term stands for launch gap, ramp-up and tail of every kernel; engines that use CUDA
graphs (TensorRT-LLM, vLLM, gpt-fast) hide the CPU launch but not these gaps, so the device's
``kernel_launch_s`` is charged once per kernel in every engine (assumption, stated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cost_models.efficiency import gemm_efficiency, tile_efficiency
from cost_models.inference.calibration import INFERENCE_GEMM_DERATE, INFERENCE_GEMM_OVERLAP
from cost_models.sharding import TP_SPLIT, experts_per_rank
from hw_profiles.types import Device
from search_spaces.counts import (
    ArchBatch,
    FloatArray,
    Matmul,
    lm_head,
    matmuls,
    qk_head_dim,
    v_head_dim,
)

OpKind = Literal["gemm", "attention", "elementwise"]

# Activations and logits travel in 16-bit; fp8/int weights are dequantised or consumed by
# fp8 GEMMs that emit bf16 (TensorRT-LLM and vLLM defaults).
ACT_BYTES = 2.0
LOGIT_BYTES = 4.0  # logits are upcast to fp32 before sampling (vLLM, TensorRT-LLM samplers)

# Matmuls split along the output dimension (column parallel) or the input dimension (row
# parallel) under tensor parallelism (Shoeybi et al. 2019, arXiv 1909.08053, section 3),
# the same split as training (:data:`cost_models.sharding.TP_SPLIT`). The MLA down-projections
# and the router are small and kept whole on every rank (vLLM). ``attn_kv`` is left out:
# its K and V heads shard only up to their count (:func:`kv_tp`).
COLUMN_PARALLEL = frozenset(k for k, v in TP_SPLIT.items() if v == "col") - {"attn_kv"}
ROW_PARALLEL = frozenset(k for k, v in TP_SPLIT.items() if v == "row")
REPLICATED = frozenset(k for k, v in TP_SPLIT.items() if v == "rep")

# Fused element-wise kernels per layer: input norm, rotary embedding, residual add + norm,
# FFN activation (the second residual add fuses into the next layer's norm), as in the
# TensorRT-LLM and vLLM Llama graphs. MoE layers add router top-k, permute and unpermute.
ELEMENTWISE_KERNELS_PER_LAYER = 4.0
MOE_EXTRA_KERNELS_PER_LAYER = 3.0
# Per forward pass outside the layers: embedding gather, final norm, and sampling
# (softmax/top-p/sample).
HEAD_EXTRA_KERNELS = 4.0


@dataclass(frozen=True, kw_only=True)
class Op:
    """One operation class of a phase, per device. ``eff_flops`` is the size used to look up
    the GEMM efficiency (the FLOPs of one GEMM; a grouped expert GEMM uses one expert's)."""

    name: str
    kind: OpKind
    flops: FloatArray
    bytes: FloatArray
    calls: FloatArray
    eff_flops: FloatArray
    tile: FloatArray | float = 1.0


@dataclass(frozen=True, kw_only=True)
class Shards:
    """Parallel degrees as float arrays broadcast to the candidates.

    ``ep`` experts-parallel ranks are drawn from the ``tp * dp`` devices of a stage; each
    expert is further split ``etp = tp / ep`` ways when ``ep < tp`` (Megatron-Core expert
    tensor parallelism), and the experts are copied ``tp * dp / (ep * etp)`` times."""

    tp: FloatArray
    pp: FloatArray
    dp: FloatArray
    ep: FloatArray

    @property
    def etp(self) -> FloatArray:
        return np.where(self.ep < self.tp, self.tp / self.ep, 1.0)

    @property
    def expert_copies(self) -> FloatArray:
        return self.tp * self.dp / (self.ep * self.etp)


def kv_tp(b: ArchBatch, tp: FloatArray) -> FloatArray:
    """Ways the KV cache is split by TP: KV heads shard up to their count and are replicated
    beyond it (vLLM); the MLA latent is shared by all heads and replicated on every rank."""
    return np.where(b.is_mla, 1.0, np.minimum(tp, b.num_kv_heads))


def tile_fraction(m: FloatArray, n: FloatArray) -> FloatArray:
    """Tile quantisation of the output (``cost_models.efficiency.tile_efficiency``) for
    GEMMs with at least one full 128-row tile; thinner GEMMs (decode) run GEMV or split-K
    kernels with small tiles and are memory-bound anyway, so they are not penalised."""
    return np.asarray(tile_efficiency(np.maximum(m, 128.0), n), dtype=np.float64)


def _shard(m: Matmul, b: ArchBatch, tp: FloatArray) -> tuple[FloatArray, FloatArray]:
    if m.name == "attn_kv":  # K and V heads, replicated beyond their count
        return m.k, m.n / kv_tp(b, tp)
    if m.name in COLUMN_PARALLEL:
        return m.k, m.n / tp
    if m.name in ROW_PARALLEL:
        return m.k / tp, m.n
    return m.k, m.n


def linear_ops(b: ArchBatch, s: Shards, *, tokens: FloatArray, weight_bytes: float) -> list[Op]:
    """Dense and expert matmuls for ``tokens`` tokens per replica; weights read once per call."""
    ops: list[Op] = []
    for m in matmuls(b):
        if m.name.startswith("expert_"):
            ops.append(_expert_op(m, b, s, tokens=tokens, weight_bytes=weight_bytes))
            continue
        k, n = _shard(m, b, s.tp)
        flops = 2.0 * tokens * k * n
        nbytes = k * n * weight_bytes + tokens * (k + n) * ACT_BYTES
        ops.append(Op(name=m.name, kind="gemm", flops=flops, bytes=nbytes, calls=m.stored,
                      eff_flops=flops, tile=tile_fraction(tokens, n)))  # fmt: skip
    return ops


def _expert_op(
    m: Matmul, b: ArchBatch, s: Shards, *, tokens: FloatArray, weight_bytes: float
) -> Op:
    """A grouped GEMM over the local experts of one MoE layer (one launch per layer)."""
    experts = np.maximum(b.num_experts, 1.0)
    local = experts_per_rank(experts, s.ep)  # ceil(E / ep) with redundant copies
    # token-slots that reach this device's experts: tokens of the stage's replicas times
    # top_k, spread over ep ranks and shared by the expert copies (balanced routing assumed)
    slots = tokens * s.dp * b.top_k / (s.ep * s.expert_copies)
    # expert TP: the up projection splits its output, the down projection its input
    k = m.k / s.etp if m.name == "expert_down" else m.k
    n = m.n / s.etp if m.name == "expert_up" else m.n
    # expected distinct experts hit when each token picks top_k of E uniformly:
    # E * (1 - (1 - k/E)^tokens) (occupancy of a uniform router; issue 4)
    seen = tokens * s.dp / s.expert_copies
    touched = local * (1.0 - (1.0 - b.top_k / experts) ** seen)
    flops = 2.0 * slots * k * n
    nbytes = touched * k * n * weight_bytes + slots * (k + n) * ACT_BYTES
    # a grouped GEMM fills the device with all local experts' tiles (CUTLASS grouped GEMM):
    # size effect at the launch's FLOPs, tile quantisation per expert
    per_expert_rows = slots / np.maximum(local, 1.0)
    return Op(name=m.name, kind="gemm", flops=flops, bytes=nbytes, calls=b.num_moe_layers,
              eff_flops=flops, tile=tile_fraction(per_expert_rows, n))  # fmt: skip


def attention_op(
    b: ArchBatch,
    s: Shards,
    *,
    queries: FloatArray,
    context: FloatArray,
    causal: bool,
    kv_bytes: float,
    chunks: FloatArray | float = 1.0,
) -> Op:
    """Score and value products of one layer for ``queries`` query tokens per replica at
    ``context`` keys each, plus the KV-cache read (decode) or write (prefill).

    Prefill: causal attention, ``2 * S * h * (d_qk + d_v) / 2`` FLOPs per token (PaLM,
    arXiv 2204.02311, appendix B, halved for the causal mask). Decode with MLA uses the
    absorbed form (DeepSeek-V2, arXiv 2405.04434, section 2.1.2 and appendix C): scores
    over ``kv_lora_rank + rope`` dims and values over ``kv_lora_rank`` per head. A prefill in
    ``chunks`` equal chunks (chunked prefill) does the same causal work, one kernel per chunk
    and layer, and chunk k reads the KV entries the k - 1 chunks before it wrote:
    ``tokens * (chunks - 1) / 2`` entries over the whole prefill."""
    h = b.num_heads / s.tp
    absorbed = b.is_mla & (not causal)
    dqk = np.where(absorbed, b.kv_lora_rank + b.qk_rope_head_dim, qk_head_dim(b))
    dv = np.where(absorbed, b.kv_lora_rank, v_head_dim(b))
    mask = 0.5 if causal else 1.0
    flops = 2.0 * queries * context * h * (dqk + dv) * mask
    kv_width = np.where(
        b.is_mla, b.kv_lora_rank + b.qk_rope_head_dim, 2.0 * b.num_kv_heads * b.head_dim
    ) / kv_tp(b, s.tp)
    # prefill writes the new KV entries; decode reads the whole cache of every sequence
    kv_tokens = queries * (1.0 + (chunks - 1.0) / 2.0) if causal else queries * context
    nbytes = kv_tokens * kv_width * kv_bytes + queries * h * (dqk + dv) * ACT_BYTES * 2.0
    return Op(name="attention", kind="attention", flops=flops / chunks, bytes=nbytes / chunks,
              calls=b.num_layers * chunks, eff_flops=flops / chunks)  # fmt: skip


def elementwise_op(b: ArchBatch, s: Shards, *, tokens: FloatArray) -> Op:
    """Norms, rotary embedding, residual adds and the FFN activation of every layer:
    each reads and writes its activations once (bytes per token per layer below)."""
    d, tp = b.d_model, s.tp
    width = np.where(b.num_moe_layers > 0, b.top_k * b.d_expert / s.etp, b.d_ff / tp)
    per_token = (
        4.0 * d  # two norms: read + write
        + 3.0 * d  # residual add
        + 2.0 * b.num_heads * qk_head_dim(b) / tp  # rotary on queries (keys are smaller)
        + (2.0 + b.gated) * width  # activation: read up (and gate), write
    ) * ACT_BYTES
    per_call = tokens * per_token / ELEMENTWISE_KERNELS_PER_LAYER
    calls = ELEMENTWISE_KERNELS_PER_LAYER * b.num_layers
    calls = calls + MOE_EXTRA_KERNELS_PER_LAYER * b.num_moe_layers
    zero = np.zeros_like(per_call)
    return Op(name="elementwise", kind="elementwise", flops=zero, bytes=per_call, calls=calls,
              eff_flops=zero)  # fmt: skip


def head_ops(b: ArchBatch, s: Shards, *, rows: FloatArray, weight_bytes: float) -> list[Op]:
    """LM head on ``rows`` positions (the last of each sequence in prefill, as vLLM and
    TensorRT-LLM compute), vocabulary-parallel over TP, plus embedding, final norm and
    sampling kernels. The head stays 16-bit under weight-only quantisation (AWQ/ModelOpt
    defaults keep ``lm_head`` unquantised)."""
    del weight_bytes
    head = lm_head(b)
    k, n = head.k, head.n / s.tp
    flops = 2.0 * rows * k * n
    nbytes = k * n * ACT_BYTES + rows * (k + n) * ACT_BYTES
    one = np.ones_like(flops)
    sample_bytes = rows * n * LOGIT_BYTES * 2.0 / HEAD_EXTRA_KERNELS
    return [
        Op(name="lm_head", kind="gemm", flops=flops, bytes=nbytes, calls=one, eff_flops=flops,
           tile=tile_fraction(rows, n)),
        Op(name="head_misc", kind="elementwise", flops=np.zeros_like(flops), bytes=sample_bytes,
           calls=HEAD_EXTRA_KERNELS * one, eff_flops=np.zeros_like(flops)),
    ]  # fmt: skip


def op_times(
    ops: list[Op],
    device: Device,
    *,
    compute_dtype: str,
    gemm_derate: float | FloatArray = INFERENCE_GEMM_DERATE,
    gemm_overlap: float | FloatArray = INFERENCE_GEMM_OVERLAP,
    host_launch_s: float = 0.0,
) -> dict[str, FloatArray]:
    """Time by category: ``compute`` (compute-bound ops), ``memory`` (memory-bound ops) and
    ``launch`` (the fixed per-kernel cost, and the device's wait for the host where a kernel
    is shorter than ``host_launch_s``, the host's time to issue one kernel without CUDA
    graphs). Their sum is the time of the ops. A GEMM's unhidden share of its shorter term
    (``1 - gemm_overlap``) counts in the category of its longer one. ``gemm_derate`` and
    ``gemm_overlap`` may be arrays over the candidates (the calibration's grid)."""
    bw = device.memory_bandwidth_bytes_per_s * device.memory_efficiency
    compute = memory = launch = np.zeros(())
    for op in ops:
        if op.kind == "gemm":
            peak = device.peak(compute_dtype)
            eff = gemm_efficiency(device, flops=op.eff_flops, dtype=compute_dtype) * op.tile
            eff = eff * gemm_derate
        else:  # fused attention stays 16-bit (Transformer Engine FP8 primer); element-wise
            peak = device.peak("bf16" if "bf16" in device.peak_flops_per_s else "fp16")
            eff = np.full_like(op.flops, device.attention_efficiency)
        t_c = op.flops / (peak * np.maximum(eff, 1e-6))
        t_m = op.bytes / bw
        present = op.calls > 0
        bound = t_c >= t_m
        hidden = gemm_overlap if op.kind == "gemm" else 1.0
        t = np.maximum(t_c, t_m) + (1.0 - hidden) * np.minimum(t_c, t_m)
        compute = compute + np.where(present & bound, t * op.calls, 0.0)
        memory = memory + np.where(present & ~bound, t * op.calls, 0.0)
        host_wait = np.maximum(host_launch_s - np.maximum(t_c, t_m), 0.0)
        launch = launch + np.where(present, op.calls * (device.kernel_launch_s + host_wait), 0.0)
    return {"compute": compute, "memory": memory, "launch": launch}
