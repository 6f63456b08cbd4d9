"""Vectorised inference cost: prefill (time to first token), decode (time per output token),
KV cache and memory per device, over arrays of candidates (architectures x plans x batches).

Conventions (stated once, used everywhere):

* A request batch of ``batch`` sequences is split over ``dp`` model replicas of ``tp x pp``
  devices (``ceil(batch / dp)`` sequences per replica). Latency of one batch is the sum over
  the ``pp`` stages: pipelining helps memory, not the latency of a single batch.
* TTFT = the prefill forward pass over ``prompt_len`` tokens per sequence plus the LM head on
  the last position and sampling. TPOT = one decode step at the *average* context of the
  generation, ``prompt_len + gen_len / 2`` (the KV read grows linearly, so the mean step is
  the step at the mean context). ``e2e_s = ttft_s + (gen_len - 1) * tpot_s``.
* Time breakdown keys (per phase, seconds; they sum to the phase time): ``compute``
  (compute-bound ops), ``memory`` (memory-bound ops: weights, KV cache, element-wise),
  ``tp_comm`` (two all-reduces per layer on the activations, Megatron TP), ``pp_comm``
  (stage-to-stage activations), ``ep_comm`` (expert all-to-all dispatch + combine),
  ``other`` (the fixed per-kernel launch/gap cost, the host's kernel issue where the engine
  has no CUDA graphs, and the engine's per-iteration host overhead; see
  :class:`cost_models.options.ServeOptions`).
* Memory breakdown keys (bytes per device): ``weights``, ``kv_cache`` (at the end of the
  generation, ``prompt_len + gen_len`` tokens), ``activations`` (the prefill workspace of one
  chunk: the whole prompt batch without chunked prefill), ``other`` (framework overhead, the
  stack's ``overhead_bytes``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from cost_models.inference.calibration import INFERENCE_GEMM_DERATE, INFERENCE_GEMM_OVERLAP
from cost_models.inference.ops import (
    ACT_BYTES,
    LOGIT_BYTES,
    REPLICATED,
    Op,
    Shards,
    attention_op,
    elementwise_op,
    head_ops,
    kv_tp,
    linear_ops,
    op_times,
)
from cost_models.network.collectives import collective_time_s
from cost_models.options import ServeOptions
from cost_models.sharding import expert_share
from hw_profiles.types import System
from search_spaces.counts import (
    ArchBatch,
    FloatArray,
    dtype_bytes,
    embedding_params,
    kv_cache_bytes_per_token,
    matmuls,
    non_embedding_params,
    qk_head_dim,
)

# The default engine's framework memory (see ServeOptions.overhead_bytes).
FRAMEWORK_OVERHEAD_BYTES = ServeOptions().overhead_bytes

TIME_KEYS: tuple[str, ...] = ("compute", "memory", "tp_comm", "pp_comm", "ep_comm", "other")
MEMORY_KEYS: tuple[str, ...] = ("weights", "kv_cache", "activations", "other")


@dataclass(frozen=True, kw_only=True)
class InferenceArrays:
    """Costs of every candidate (arrays of one length). Times in seconds, memory in bytes."""

    ttft_s: FloatArray
    tpot_s: FloatArray
    e2e_s: FloatArray
    tokens_per_s: FloatArray  # generated tokens per second over the batch, prefill included
    kv_cache_bytes: FloatArray  # whole batch, all devices, at prompt_len + gen_len tokens
    prefill_chunks: FloatArray  # engine iterations of the prefill (1 without chunked prefill)
    memory_per_device_bytes: FloatArray
    fits: npt.NDArray[np.bool_]
    prefill_breakdown_s: dict[str, FloatArray]
    decode_breakdown_s: dict[str, FloatArray]
    memory_breakdown_bytes: dict[str, FloatArray]


def compute_dtype(weight_dtype: str, system: System) -> str:
    """Dtype the GEMMs run in: fp8 weights use fp8 tensor cores where the device has them;
    int8/int4 are weight-only (W8A16/W4A16 as in AWQ/GPTQ kernels) and compute in 16-bit."""
    peaks = system.device.peak_flops_per_s
    if weight_dtype == "fp8" and "fp8" in peaks:
        return "fp8"
    if weight_dtype in peaks and weight_dtype in ("bf16", "fp16"):
        return weight_dtype
    return "bf16" if "bf16" in peaks else "fp16"


def _collective(
    system: System, op: str, size: FloatArray, group: FloatArray, stride: FloatArray
) -> FloatArray:
    """``cost_models.network.collectives`` (nccl-tests size conventions); a group of 1 costs 0 s."""
    t = collective_time_s(
        system,
        op=op,  # type: ignore[arg-type]
        size_bytes=np.maximum(size, 1.0),
        group_size=group,
        stride=np.where(group > 1, stride, 1.0),
    )
    return np.asarray(t, dtype=np.float64)


def _comm(b: ArchBatch, s: Shards, system: System, *, tokens: FloatArray) -> dict[str, FloatArray]:
    """Communication of one forward pass of ``tokens`` tokens per replica."""
    act = tokens * b.d_model * ACT_BYTES
    # Megatron TP: one all-reduce after attention and one after the FFN, per layer
    # (Shoeybi et al. 2019, arXiv 1909.08053, figure 3, forward pass); one in a parallel block
    blocks = b.blocks_per_layer * b.num_layers
    tp_comm = blocks * _collective(system, "all_reduce", act, s.tp, np.ones_like(act))
    # stage boundary: one point-to-point send of the activations; stages are tp*dp apart
    pp_comm = (s.pp - 1.0) * _collective(
        system, "p2p", act, np.where(s.pp > 1, 2.0, 1.0), s.tp * s.dp
    )
    # EP dispatch + combine per MoE layer: each rank sends its 1/tp share of the replica's
    # tokens, top_k copies of d_model each (SOURCES.md, all-to-all formula; DeepEP)
    a2a = tokens * b.top_k * b.d_model * ACT_BYTES / s.tp
    ep_comm = (
        2.0 * b.num_moe_layers * _collective(system, "all_to_all", a2a, s.ep, np.ones_like(a2a))
    )
    return {"tp_comm": tp_comm, "pp_comm": pp_comm, "ep_comm": ep_comm}  # fmt: skip


def phase_time(
    b: ArchBatch,
    s: Shards,
    system: System,
    *,
    tokens: FloatArray,
    rows: FloatArray,
    context: FloatArray,
    prefill: bool,
    weight_dtype: str,
    kv_dtype: str,
    include_head: bool = True,
    gemm_derate: float | FloatArray = INFERENCE_GEMM_DERATE,
    gemm_overlap: float | FloatArray = INFERENCE_GEMM_OVERLAP,
    serve: ServeOptions | None = None,
    chunks: FloatArray | float = 1.0,
) -> dict[str, FloatArray]:
    """Breakdown (``TIME_KEYS``) of one forward pass: ``tokens`` tokens per replica, LM head
    on ``rows`` positions, attention over ``context`` keys per query. ``include_head=False``
    leaves out the LM head, embedding and sampling (per-layer measurements) and the engine's
    per-iteration overhead; ``serve`` is the engine (default :class:`ServeOptions`).
    ``chunks`` > 1 (a chunked prefill, :func:`prefill_chunks`) runs the pass as that many
    engine iterations of ``tokens / chunks`` tokens: every chunk reads the weights, launches
    its kernels, communicates and pays the per-iteration overhead; the LM head runs once."""
    engine = serve or ServeOptions()
    wb, kvb = dtype_bytes(weight_dtype), dtype_bytes(kv_dtype)
    per_chunk = tokens / chunks

    def repeated(op: Op) -> Op:
        return replace(op, calls=op.calls * chunks)

    ops = [repeated(op) for op in linear_ops(b, s, tokens=per_chunk, weight_bytes=wb)]
    ops.append(attention_op(b, s, queries=tokens, context=context, causal=prefill, kv_bytes=kvb,
                            chunks=chunks))  # fmt: skip
    ops.append(repeated(elementwise_op(b, s, tokens=per_chunk)))
    if include_head:
        ops.extend(head_ops(b, s, rows=rows, weight_bytes=wb))
    t = op_times(ops, system.device, compute_dtype=compute_dtype(weight_dtype, system),
                 gemm_derate=gemm_derate, gemm_overlap=gemm_overlap,
                 host_launch_s=engine.host_launch_s)  # fmt: skip
    comm = {k: v * chunks for k, v in _comm(b, s, system, tokens=per_chunk).items()}
    step = engine.step_overhead_s * chunks if include_head else 0.0
    out = {"compute": t["compute"], "memory": t["memory"], **comm, "other": t["launch"] + step}
    n = len(b)
    return {k: np.broadcast_to(v, (n,)).astype(np.float64) for k, v in out.items()}


def prefill_chunks(tokens: FloatArray, serve: ServeOptions) -> FloatArray:
    """Engine iterations a prefill of ``tokens`` tokens per replica takes: one, or
    ``ceil(tokens / prefill_chunk_tokens)`` under chunked prefill (the scheduler fills each
    iteration up to its token budget; Sarathi-Serve, Agrawal et al. 2024, OSDI, section 4)."""
    budget = float(serve.prefill_chunk_tokens)
    if budget <= 0:
        return np.ones_like(tokens)
    out: FloatArray = np.maximum(np.ceil(tokens / budget), 1.0)
    return out


def weight_bytes_per_device(b: ArchBatch, s: Shards, *, weight_dtype: str) -> FloatArray:
    """Weights of the largest pipeline stage on one device: linear layers in ``weight_dtype``
    (TP-sharded, experts over ``ep * etp``), embeddings and norms in 16-bit. With ``pp > 1``
    the first and last stages each hold one vocabulary table (Megatron; a tied table is
    held by both)."""
    wb = dtype_bytes(weight_dtype)
    dense = np.zeros_like(b.d_model)
    expert = np.zeros_like(b.d_model)
    for m in matmuls(b):
        if m.name.startswith("expert_"):
            expert = expert + m.params * expert_share(b.num_experts, s.ep) / s.etp
        elif m.name in REPLICATED:
            dense = dense + m.params
        elif m.name == "attn_kv":
            dense = dense + m.params / kv_tp(b, s.tp)
        else:
            dense = dense + m.params / s.tp
    linear_total = sum((m.params for m in matmuls(b)), np.zeros_like(b.d_model))
    norms = non_embedding_params(b) - linear_total
    table = b.vocab_size * b.d_model / s.tp
    emb = np.where(s.pp > 1, table, embedding_params(b) / s.tp)
    return (dense + expert) * wb / s.pp + (norms / s.pp + emb) * ACT_BYTES


def activation_bytes_per_device(
    b: ArchBatch, s: Shards, *, tokens: FloatArray, rows: FloatArray
) -> FloatArray:
    """Prefill workspace: the residual stream, normed input, attention output (4 x d_model),
    the local Q/K/V and the FFN intermediate (up and gate) for ``tokens`` tokens, plus fp32
    logits of ``rows`` positions. Freed buffers are reused layer to layer (one layer live)."""
    qkv = (b.num_heads * qk_head_dim(b) + 2.0 * b.num_kv_heads * b.head_dim) / s.tp
    # routed experts: tokens * top_k slots spread over the stage's tp * dp devices
    routed = (b.top_k + b.num_shared_experts) * b.d_expert
    ffn = np.maximum(b.d_ff * (b.num_dense_layers > 0), routed) / s.tp
    per_token = (4.0 * b.d_model + qkv + (1.0 + b.gated) * ffn) * ACT_BYTES
    return tokens * per_token + rows * b.vocab_size / s.tp * LOGIT_BYTES


def inference_arrays(
    b: ArchBatch,
    system: System,
    *,
    tp: npt.ArrayLike,
    pp: npt.ArrayLike,
    ep: npt.ArrayLike,
    dp: npt.ArrayLike,
    batch: npt.ArrayLike,
    prompt_len: npt.ArrayLike,
    gen_len: npt.ArrayLike,
    weight_dtype: str,
    kv_dtype: str,
    gemm_derate: float | FloatArray = INFERENCE_GEMM_DERATE,
    gemm_overlap: float | FloatArray = INFERENCE_GEMM_OVERLAP,
    serve: ServeOptions | None = None,
) -> InferenceArrays:
    """Prefill, decode and memory of every candidate; all array arguments broadcast to
    ``len(b)``. The plans are taken as valid (see ``cost_models.inference.planner`` for checks);
    ``serve`` is the serving engine's facts (default :class:`ServeOptions`)."""
    n = len(b)
    engine = serve or ServeOptions()

    def arr(x: npt.ArrayLike) -> FloatArray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))

    s = Shards(tp=arr(tp), pp=arr(pp), dp=arr(dp), ep=arr(ep))
    batch_a, prompt, gen = arr(batch), arr(prompt_len), arr(gen_len)
    per_replica = np.ceil(batch_a / s.dp)
    chunks = prefill_chunks(per_replica * prompt, engine)
    pre = phase_time(b, s, system, tokens=per_replica * prompt, rows=per_replica,
                     context=prompt, prefill=True, weight_dtype=weight_dtype,
                     kv_dtype=kv_dtype, gemm_derate=gemm_derate, gemm_overlap=gemm_overlap,
                     serve=engine, chunks=chunks)  # fmt: skip
    dec = phase_time(b, s, system, tokens=per_replica, rows=per_replica,
                     context=prompt + gen / 2.0, prefill=False, weight_dtype=weight_dtype,
                     kv_dtype=kv_dtype, gemm_derate=gemm_derate, gemm_overlap=gemm_overlap,
                     serve=engine)  # fmt: skip
    ttft = sum(pre.values(), np.zeros(n))
    tpot = sum(dec.values(), np.zeros(n))
    e2e = ttft + (gen - 1.0) * tpot

    kv_token = kv_cache_bytes_per_token(b, dtype=kv_dtype)
    kv_total = batch_a * (prompt + gen) * kv_token
    mem = {
        "weights": weight_bytes_per_device(b, s, weight_dtype=weight_dtype),
        "kv_cache": per_replica * (prompt + gen) * kv_token / (s.pp * kv_tp(b, s.tp)),
        "activations": activation_bytes_per_device(
            b, s, tokens=np.ceil(per_replica * prompt / chunks), rows=per_replica
        ),
        "other": np.full(n, engine.overhead_bytes),
    }
    total = sum(mem.values(), np.zeros(n))
    return InferenceArrays(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        tokens_per_s=batch_a * gen / e2e,
        kv_cache_bytes=kv_total,
        prefill_chunks=chunks,
        memory_per_device_bytes=total,
        fits=total <= system.device.capacity_bytes,
        prefill_breakdown_s=pre,
        decode_breakdown_s=dec,
        memory_breakdown_bytes=mem,
    )
