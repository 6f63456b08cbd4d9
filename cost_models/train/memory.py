"""Training memory per device, vectorised over (architecture, plan) pairs.

Model states with mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054,
section 3.1): 2 bytes of bf16 weights, 4 bytes of fp32 gradients (Megatron's ``main_grad``;
2 with ``TrainOptions.grad_bytes`` = 2) and 12 bytes of optimizer state (fp32 master weights, Adam m and v) per parameter, 18 in
all; ZeRO-1 shards the optimizer over the data-parallel group, ZeRO-2 also the gradients,
ZeRO-3/FSDP also the weights (where the fp32 shard is the only copy of a parameter,
``TrainOptions.zero3_bf16_shard`` False as in PyTorch FSDP, no bf16 shard is kept: 16 bytes).
FSDP under pipelining (``zero`` 3 with ``pp`` > 1) gathers a
stage's parameters once per step and keeps them (torchtitan ``apply_fsdp``:
``reshard_after_forward = not pp_enabled``), and accumulates the gradients of every
micro-batch unsharded in the reduce dtype, reduce-scattering them after the last one
(``torch.distributed.pipelining`` stage ``backward_maybe_with_nosync``: no gradient sync and no
reshard after backward until the last backward; FSDP2 keeps the unsharded accumulated
gradient in ``reduce_dtype``): at its peak it holds what ZeRO-1 holds. FP8 training keeps an FP8 copy of each GEMM weight and its
transpose (2 more bytes; Transformer Engine caches both for Hopper's TN-only FP8 GEMMs), for
the transformer layers' GEMMs only: the embedding is a lookup, and Megatron-Core builds the LM
head as its own ``ColumnParallelLinear``, not a Transformer Engine module, so it stays in bf16.

Activations per layer follow Korthikanti et al. 2022 (arXiv 2205.05198, section 4.1, eq. 1-2
and Table 2), generalised from GPT's shapes to GQA, gated FFNs, MoE and MLA by counting
the same tensors: the norm inputs, the inputs of the QKV and FFN GEMMs and the dropout masks
are replicated across TP ranks unless sequence parallelism shards them; Q, K, V, the
attention output and the FFN intermediates are split by TP; an unfused attention also keeps
the S x S softmax output (and dropout mask and output). Selective recompute drops the S x S
part, full recompute keeps only the layer input. Selective recompute of the MLA
up-projections and dense MLPs (``mla_up_proj_mlp``, :mod:`cost_models.train.recompute`) keeps the
latents and the attention output instead of Q, K and V, and only the MLP input of dense
layers. With FP8 training, the saved input of every GEMM is its FP8 copy, 1 byte per element
(Transformer Engine's ``Linear`` saves the quantised input for the weight-gradient GEMM);
the norm inputs, the attention kernel's Q, K, V and output, and the activation-function
inputs stay in bf16. Under torchtitan's op-level
selective checkpointing (``alternate_mm``) a layer keeps its input, the outputs of the matmuls
it does not recompute and the attention output (:mod:`cost_models.train.recompute`); under
MaxText's ``minimal`` policy (``dots``) it keeps its input, MLA's latents, Q, K, V and the
up-projection outputs (router logits in fp32), bf16.

Peak memory also holds, for a moment, tensors no formula above keeps (``transient``, added to
``activations``): the loss gradient on the device that holds the LM head (fp32 logits
gradient and its bf16 copy, 6 bytes per logit), or the rematerialised activations of the one
layer whose backward is running (what recompute dropped, for one layer and one micro-batch),
whichever is larger. Pipelining keeps ``min(pp, m)``
micro-batches in flight on the first stage, and interleaving multiplies that by
``1 + (pp-1)/(pp*vpp)`` (section 4.2.3).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from cost_models.options import TrainOptions
from cost_models.plan_batch import PlanBatch
from cost_models.sharding import TP_SPLIT
from cost_models.train.dp_comm import LocalParams
from cost_models.train.ops import ACT_BYTES, StageShape
from cost_models.train.recompute import selective_share
from search_spaces.counts import ArchBatch, matmuls, qk_head_dim, v_head_dim

__all__ = [
    "MEMORY_KEYS",
    "activation_bytes_per_token",
    "activation_memory_bytes",
    "stored_activation_bytes",
    "train_memory",
    "transient_bytes",
]

FloatArray = npt.NDArray[np.float64]

WEIGHT_BYTES = 2.0
OPTIMIZER_BYTES = 12.0
FP8_COPY_BYTES = 2.0
ZERO3_PREFETCH_LAYERS = 2.0  # FSDP keeps the current and the prefetched layer unsharded
MEMORY_KEYS: tuple[str, ...] = ("weights", "gradients", "optimizer", "activations", "other")


def activation_bytes_per_token(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    options: TrainOptions,
    dtype: str = "bf16",
) -> tuple[FloatArray, FloatArray]:
    """Bytes one device keeps per token for one dense layer and one MoE layer."""
    a, d, t = ACT_BYTES, arch.d_model, shape.tp
    g = 1.0 if dtype == "fp8" else a  # bytes per saved GEMM input element
    sp_div = np.where(plan.sp > 0, t, 1.0)
    drop = 1.0 if options.dropout else 0.0
    latents = (
        arch.q_lora_rank + arch.kv_lora_rank + np.where(arch.is_mla, arch.qk_rope_head_dim, 0.0)
    )
    # norm inputs (2d), QKV and FFN GEMM inputs (2d), two 1-byte dropout masks; MLA latents
    # (up-projection GEMM inputs) and their norm inputs
    rep = (2.0 * a + 2.0 * g) * d + drop * 2.0 * d + (a + g) * latents
    heads = arch.num_heads
    kv_heads = np.where(arch.is_mla, heads, arch.num_kv_heads)
    dqk, dv = qk_head_dim(arch), v_head_dim(arch)
    attn = a * (heads * dqk + kv_heads * dqk + kv_heads * dv + heads * dv)
    up_proj = options.selective_recompute in ("mla_up_proj", "mla_up_proj_mlp")
    up_proj_mlp = options.selective_recompute == "mla_up_proj_mlp"
    if options.attention_kernel == "unfused":
        scores = heads * shape.seq_len * (2.0 + drop * 3.0)  # softmax out; dropout mask + out
    else:
        scores = 4.0 * heads  # flash attention keeps only the fp32 log-sum-exp per row
    up = 1.0 + arch.gated
    # the up-projection output (activation input, bf16) and the activation output (down
    # GEMM input)
    dense_ffn = (a * up + g) * arch.d_ff
    routed = arch.top_k * options.moe_imbalance * (g * d + (a * up + g) * arch.d_expert)
    shared = (a * up + g) * arch.d_expert * arch.num_shared_experts
    moe_ffn = routed + shared + 4.0 * arch.num_experts  # fp32 router probabilities

    rc = plan.recompute
    if options.selective_recompute == "alternate_mm":
        alt_dense, alt_moe = _alternate_mm_kept(arch, shape, sp_div=sp_div, heads=heads, dv=dv)
    keep_scores = np.where(rc == 0, scores, 0.0)
    sel = rc == 1
    # mla_up_proj(_mlp): MLA keeps the latents (in rep) and the attention output, not Q, K, V
    attn_kept = np.where(sel & up_proj & (arch.is_mla > 0), a * heads * dv + 4.0 * heads, attn)
    dense_ffn_kept = np.where(sel & up_proj_mlp, 0.0, dense_ffn)
    dense = rep / sp_div + (attn_kept + dense_ffn_kept + keep_scores) / t
    moe = rep / sp_div + (attn_kept + moe_ffn + keep_scores) / t
    if options.selective_recompute == "alternate_mm":
        dense = np.where(sel, alt_dense, dense)
        moe = np.where(sel, alt_moe, moe)
    if options.selective_recompute == "dots":
        # the layer input, MLA's latents, Q, K, V and the up-projection outputs
        base = a * (d + latents) / sp_div + (attn - a * heads * dv) / t
        up_out = a * up * arch.d_expert * (arch.top_k * options.moe_imbalance)
        up_out = up_out + a * up * arch.d_expert * arch.num_shared_experts
        dense = np.where(sel, base + a * up * arch.d_ff / t, dense)
        moe = np.where(sel, base + (up_out + 4.0 * arch.num_experts) / t, moe)
    layer_input = a * d / sp_div
    dense = np.where(rc == 2, layer_input, dense)
    moe = np.where(rc == 2, layer_input, moe)
    return dense, moe


def _alternate_mm_kept(
    arch: ArchBatch, shape: StageShape, *, sp_div: FloatArray, heads: FloatArray, dv: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Bytes per token one dense and one MoE layer keep under op-level selective
    checkpointing: the layer input, the outputs of the matmuls it saves (column-parallel
    outputs split by TP, row-parallel and replicated ones by SP) and the attention output
    with its log-sum-exp."""
    a, t = ACT_BYTES, shape.tp
    base = a * arch.d_model / sp_div + (a * heads * dv + 4.0 * heads) / t
    dense, moe = base, base
    for mm in matmuls(arch):
        kept = 1.0 - selective_share(arch, mm.name, "alternate_mm")
        split = TP_SPLIT.get(mm.name, "col")
        per_token = a * mm.n * kept / np.where(split == "col", t, sp_div)
        present = np.where(mm.stored > 0, 1.0, 0.0)
        if mm.name.startswith("attn_"):
            dense, moe = dense + present * per_token, moe + present * per_token
        elif mm.name.startswith("ffn_"):
            dense = dense + per_token
        elif mm.name.startswith("expert_"):
            moe = moe + per_token * arch.top_k
        else:  # shared experts, router
            moe = moe + per_token
    return dense, moe


def transient_bytes(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    options: TrainOptions,
    dtype: str = "bf16",
) -> FloatArray:
    """Working memory at the peak beyond the stored activations (see the module docstring)."""
    kept = activation_bytes_per_token(arch, plan, shape, options=options, dtype=dtype)
    return _transient(arch, plan, shape, kept, options=options, dtype=dtype)


def _transient(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    kept: tuple[FloatArray, FloatArray],
    *,
    options: TrainOptions,
    dtype: str,
) -> FloatArray:
    loss = np.where(plan.pp > 1, 0.0, shape.tokens * arch.vocab_size / shape.tp * 6.0)
    none_plan = replace(plan, recompute=np.zeros_like(plan.recompute))
    full = activation_bytes_per_token(arch, none_plan, shape, options=options, dtype=dtype)
    dense_layer = np.where(shape.dense_layers > 0, full[0] - kept[0], 0.0)
    moe_layer = np.where(shape.moe_layers > 0, full[1] - kept[1], 0.0)
    remat = shape.tokens * np.maximum(dense_layer, moe_layer)
    return np.maximum(loss, remat)


def stored_activation_bytes(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    options: TrainOptions,
    dtype: str = "bf16",
) -> FloatArray:
    """Activations kept between forward and backward on the first pipeline stage (the one with
    most in flight): what Korthikanti et al. 2022 count."""
    kept = activation_bytes_per_token(arch, plan, shape, options=options, dtype=dtype)
    return _stored(arch, plan, shape, kept)


def _stored(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, kept: tuple[FloatArray, FloatArray]
) -> FloatArray:
    dense, moe = kept
    per_mb = shape.tokens * (dense * shape.dense_layers + moe * shape.moe_layers)
    m = plan.num_microbatches
    p, v = plan.pp, plan.vpp
    in_flight = np.where(p > 1, np.minimum(p, m), 1.0)
    interleave = np.where(v > 1, 1.0 + (p - 1.0) / (p * v), 1.0)
    # with one stage the same device also holds the bf16 logits and their fp32 copy
    logits = np.where(p > 1, 0.0, shape.tokens * arch.vocab_size / shape.tp * (ACT_BYTES + 4.0))
    return per_mb * in_flight * interleave + logits


def activation_memory_bytes(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    options: TrainOptions,
    dtype: str = "bf16",
) -> FloatArray:
    """Peak activation bytes: the stored activations plus the transient peak."""
    kept = activation_bytes_per_token(arch, plan, shape, options=options, dtype=dtype)
    transient = _transient(arch, plan, shape, kept, options=options, dtype=dtype)
    return _stored(arch, plan, shape, kept) + transient


def train_memory(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    params: LocalParams,
    *,
    dtype: str,
    options: TrainOptions,
) -> dict[str, FloatArray]:
    """Memory per device by category (:data:`MEMORY_KEYS`), in bytes."""
    z = np.where((plan.zero >= 3) & (plan.pp > 1), 1.0, plan.zero)  # FSDP x PP peaks as ZeRO-1
    dense_shards = np.where(z >= 3, params.dense_group, 1.0)
    dense_w = params.dense / dense_shards
    expert_w = params.expert / np.where(z >= 3, params.expert_group, 1.0)
    local = params.dense + params.expert
    sharded = params.dense / params.dense_group + params.expert / params.expert_group
    gemm_w = dense_w - params.tables / dense_shards + expert_w  # the tables are not FP8 GEMMs
    fp8_copy = FP8_COPY_BYTES * gemm_w if dtype == "fp8" else 0.0
    shard_bytes = np.where((z >= 3) & (not options.zero3_bf16_shard), 0.0, WEIGHT_BYTES)
    weights = shard_bytes * (dense_w + expert_w) + fp8_copy
    prefetch = np.where(z >= 3, ZERO3_PREFETCH_LAYERS * local / np.maximum(shape.layers, 1.0), 0.0)
    return {
        "weights": weights + WEIGHT_BYTES * prefetch,
        "gradients": options.grad_bytes * np.where(z >= 2, sharded, local),
        "optimizer": OPTIMIZER_BYTES * np.where(z >= 1, sharded, local),
        "activations": activation_memory_bytes(arch, plan, shape, options=options, dtype=dtype),
        "other": np.full_like(local, options.overhead_bytes),
    }
