"""Memory-bound ops of one training micro-batch (norms, residual adds, activations, MoE
permutes, RoPE, cross-entropy, FP8 casts): bytes moved over the achieved HBM bandwidth.

Bytes are counted from each kernel's inputs and outputs; backward kernels move twice the
forward bytes (read the output gradient and the saved input, write the input gradient).

With ``elementwise="eager"`` (PyTorch eager mode, as in torchtitan without ``torch.compile``;
its Llama model follows Meta's Llama reference code) every element-wise op is its own
kernel, and the bytes per element are counted from that op sequence:

* RMSNorm ``(x.float() * rsqrt(x.float().pow(2).mean(-1) + eps)).type_as(x) * w``: upcast
  (read 2, write 4), square (4, 4), mean (4), scale (4, 4), downcast (4, 2), weight (2, 2):
  36 bytes per element against 4 for a fused kernel, in six launches;
* SwiGLU ``silu(a) * b``: silu (2, 2) and product (4, 2), 10 bytes per FFN element against 6
  fused; GELU is one kernel either way;
* RoPE through ``view_as_complex``: upcast (2, 4), complex product (4, 4), downcast (4, 2),
  20 bytes per element against 4 fused, three launches each for q and k;
* layout copies a fused attention does not need: ``repeat_kv`` materialises grouped K and V
  at the query head count, and the attention output is transposed back with
  ``.contiguous()``;
* cross-entropy's backward in eager mode writes the dense fp32 NLL gradient (4), runs the
  log-softmax backward (read 8, write 4) and casts to bf16 (4, 2): 22 bytes per logit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cost_models.efficiency import memory_time_s
from cost_models.options import TrainOptions
from cost_models.plan_batch import PlanBatch
from cost_models.sharding import TP_SPLIT, expert_share, split_widths
from cost_models.train.ops import (
    ACT_BYTES,
    OpCost,
    RecomputeSet,
    StageShape,
    attention_ops,
    gemm_ops,
)
from hw_profiles.types import Device
from search_spaces.counts import ArchBatch, matmuls, qk_head_dim, v_head_dim

__all__ = ["fp8_cast_bytes", "memory_ops", "stage_ops"]

FloatArray = npt.NDArray[np.float64]
EAGER_NORM_BYTES = 36.0  # per element, eager RMSNorm/LayerNorm (see the module docstring)
EAGER_SWIGLU_BYTES = 10.0  # per FFN element, eager silu(a) * b
EAGER_ROPE_BYTES = 20.0  # per rotated element, eager complex RoPE
FUSED_ELEMENT_BYTES = 4.0  # a fused norm or RoPE kernel: read 2, write 2 per element
FUSED_SWIGLU_BYTES = 6.0  # fused silu(a) * b: read 4, write 2 per FFN element


def _mem_op(
    device: Device,
    name: str,
    *,
    fwd_bytes: FloatArray,
    calls: FloatArray,
    recompute: RecomputeSet = "full",
    bwd_bytes: FloatArray | None = None,
) -> OpCost:
    """A memory-bound op; its backward moves ``bwd_bytes``, by default twice the forward's."""
    return OpCost(
        name=name,
        kind="memory",
        recompute=recompute,
        flops=np.zeros_like(fwd_bytes),
        bytes_moved=fwd_bytes,
        fwd_s=memory_time_s(device, bytes_moved=fwd_bytes, calls=calls),
        bwd_s=memory_time_s(
            device, bytes_moved=2.0 * fwd_bytes if bwd_bytes is None else bwd_bytes, calls=calls
        ),
    )


def memory_ops(
    arch: ArchBatch,
    plan: PlanBatch,
    shape: StageShape,
    *,
    device: Device,
    dtype: str,
    options: TrainOptions,
) -> list[OpCost]:
    """Memory-bound kernels, bytes per token counted from their inputs and outputs (bf16).

    Norms and residual adds see the full hidden vector on every TP rank unless sequence
    parallelism shards it (Korthikanti et al. 2022, arXiv 2205.05198, section 4.2.2)."""
    a, d, t, tok = ACT_BYTES, arch.d_model, shape.tp, shape.tokens
    rep = tok / np.where(plan.sp > 0, t, 1.0)  # tokens of the replicated part per device
    L, moe_l, dense_l = shape.layers, shape.moe_layers, shape.dense_layers
    up = 1.0 + arch.gated
    drop_mask = 1.0 if options.dropout else 0.0  # 1-byte mask per element
    # two norms (read d, write d) and two residual adds (read 2d, write d) per layer,
    # plus the MLA latent norms
    norm_bytes = rep * L * a * (4.0 * d + 2.0 * (arch.q_lora_rank + arch.kv_lora_rank))
    resid_bytes = rep * L * (2.0 * 3.0 * d * a + 2.0 * d * drop_mask)
    act_dense = tok * dense_l * (up + 1.0) * arch.d_ff * a / t
    shared = arch.d_expert * arch.num_shared_experts
    act_moe = (
        tok
        * moe_l
        * (up + 1.0)
        * a
        * (arch.top_k * arch.d_expert * options.moe_imbalance + shared)
        / t
    )
    # permute + unpermute copies of the routed tokens (read + write), dispatch and combine
    permute = tok * moe_l * arch.top_k * d * a * 4.0 / t
    rope_dim = np.where(arch.is_mla, arch.qk_rope_head_dim, qk_head_dim(arch))
    kv_rope = np.where(arch.is_mla, 1.0, arch.num_kv_heads)
    rope = np.where(arch.learned_positions > 0, 0.0, 1.0)
    rope_bytes = rope * tok * L * 2.0 * a * (arch.num_heads + kv_rope) * rope_dim / t
    eager = options.elementwise == "eager"
    norm_calls, rope_calls, act_calls = 2.0 * L, L * rope, L
    if eager:
        norm_bytes = norm_bytes * EAGER_NORM_BYTES / FUSED_ELEMENT_BYTES
        rope_bytes = rope_bytes * EAGER_ROPE_BYTES / FUSED_ELEMENT_BYTES
        norm_calls, rope_calls = norm_calls * 6.0, rope_calls * 6.0
        gated_factor = np.where(arch.gated > 0, EAGER_SWIGLU_BYTES / FUSED_SWIGLU_BYTES, 1.0)
        act_dense, act_moe = act_dense * gated_factor, act_moe * gated_factor
        act_calls = L * (1.0 + arch.gated)
    # vocab-parallel cross-entropy (Megatron-LM ``_VocabParallelCrossEntropy``) per logit:
    # cast to fp32 (read 2, write 4), max (read 4), subtract-exp (read 4, write 4), sum
    # (read 4) = 22 bytes forward; backward reads the softmax (4), writes the fp32 gradient
    # (4) and casts it to bf16 (read 4, write 2) = 14 bytes
    # (once more per multi-token prediction module: it has its own loss)
    heads = arch.head_passes
    ce_bytes = tok * arch.vocab_size / t * 22.0 * heads
    ops = [
        _mem_op(device, "norms", fwd_bytes=norm_bytes, calls=norm_calls),
        _mem_op(device, "residual", fwd_bytes=resid_bytes, calls=2.0 * L),
        _mem_op(device, "activation", fwd_bytes=act_dense + act_moe, calls=act_calls),
        _mem_op(device, "moe_permute", fwd_bytes=permute, calls=4.0 * moe_l),
        _mem_op(device, "rope", fwd_bytes=rope_bytes, calls=rope_calls),
        OpCost(
            name="cross_entropy",
            kind="memory",
            recompute="full",
            flops=np.zeros_like(tok),
            bytes_moved=ce_bytes,
            fwd_s=memory_time_s(device, bytes_moved=ce_bytes, calls=4.0 * heads),
            bwd_s=memory_time_s(
                device, bytes_moved=ce_bytes * (22.0 if eager else 14.0) / 22.0, calls=3.0 * heads
            ),
        ),
    ]
    if eager:
        ops.append(_eager_layout_op(arch, shape, device=device))
    if dtype == "fp8":
        ops.append(_fp8_cast_op(arch, plan, shape, device=device, casts=options.fp8_casts))
    return ops


def _eager_layout_op(arch: ArchBatch, shape: StageShape, *, device: Device) -> OpCost:
    """Eager-mode layout copies per layer: ``repeat_kv`` (read the K/V heads, write them at
    the query head count, where there are fewer KV heads) and the attention output's
    transpose to ``[tokens, heads * head_dim]``."""
    a, t, tok, L = ACT_BYTES, shape.tp, shape.tokens, shape.layers
    heads, kv = arch.num_heads, arch.num_kv_heads
    dqk, dv = qk_head_dim(arch), v_head_dim(arch)
    repeat = np.where(kv < heads, (heads + kv) * (dqk + dv), 0.0)
    out_t = 2.0 * heads * dv
    return _mem_op(
        device, "layout_copies", fwd_bytes=tok * L * a * (repeat + out_t) / t, calls=3.0 * L
    )


# Transformer Engine (``fp8_casts: fused``): which GEMM inputs are quantised by a kernel of
# their own. The others arrive in FP8 from the op before them: LayerNormLinear's norm kernel
# writes FP8 (transformer_engine/pytorch/module/layernorm_linear.py, ``with_quantized_norm``)
# and LayerNormMLP's activation writes fc2's FP8 input (layernorm_mlp.py, the activation
# called with ``fc2_input_quantizer``). Attention's output projection is a plain Linear; MoE
# experts (GroupedLinear), shared experts and MLA's down projections take a separately
# normalised or permuted input. The router and the LM head stay in high precision.
_TE_OWN_INPUT_CAST = frozenset(
    {"attn_o", "attn_q_a", "attn_kv_a", "expert_up", "expert_down", "shared_up", "shared_down"}
)
# ... and whose output gradient is quantised by a kernel of its own: all but the dense FFN's
# up projection, whose gradient LayerNormMLP quantises in the activation's backward kernel
# (``bgrad_dgelu_fused`` / the dact quantiser in layernorm_mlp.py)
_TE_FUSED_GRAD_CAST = frozenset({"ffn_up"})
_NOT_FP8 = frozenset({"router"})
# bytes per element: read bf16 (2), write FP8 row-wise (1) and column-wise (1), the second
# copy for the transposed operand of the backward GEMMs (Hopper FP8 GEMMs take only the
# "TN" layout; Micikevicius et al. 2022, arXiv 2209.05433; TE ``set_usage(rowwise=True,
# columnwise=True)``)
_TE_CAST_BYTES = 4.0
_PER_GEMM_CAST_BYTES = 3.0  # read bf16 (2), write FP8 (1)


def _local_dims(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, name: str, k: FloatArray, n: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(token share, input width, output width, weight share) of one matmul class on one
    device. Experts are split by expert TP (``etp``), their up projection by columns and their
    down projection by rows, and an EP rank sees ``etp / tp`` of the stage's tokens (the TP
    ranks dispatch disjoint token shards; :func:`cost_models.train.ops.gemm_ops`)."""
    if name.startswith("expert_"):
        k_local, n_local = split_widths("col" if name == "expert_up" else "row", k, n, shape.etp)
        tokens = shape.etp / shape.tp
        share = expert_share(arch.num_experts, plan.ep) / shape.etp
    else:
        k_local, n_local = split_widths(TP_SPLIT[name], k, n, shape.tp)
        tokens, share = np.ones_like(shape.tp), 1.0 / shape.tp
    return tokens, k_local, n_local, share


def fp8_cast_bytes(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, *, casts: str
) -> tuple[FloatArray, FloatArray]:
    """(forward, backward) bytes of FP8 cast kernels per micro-batch on one device.

    ``per_gemm``: every GEMM input read in bf16 and written in FP8, activations per token and
    weights every micro-batch (a cast before each GEMM, as torchao's Float8Linear does with
    dynamic scaling); backward twice the forward bytes. ``fused`` (Transformer Engine): only
    inputs without a fused producer are cast (:data:`_TE_OWN_INPUT_CAST`), into row- and
    column-wise FP8 copies; weights once per optimizer step (``Linear`` re-quantises its
    weight only when ``is_first_microbatch`` is true, transformer_engine/pytorch/module/
    linear.py, which Megatron-Core's TE layers pass); backward quantises each GEMM's output
    gradient except where the activation's backward kernel does it."""
    tok = shape.tokens
    per_layer = shape.layers / arch.num_layers
    acts_in, acts_grad, weights = np.zeros_like(tok), np.zeros_like(tok), np.zeros_like(tok)
    fused = casts == "fused"
    for mm in matmuls(arch):
        if fused and mm.name in _NOT_FP8:
            continue
        tokens, k, n, share = _local_dims(arch, plan, shape, mm.name, mm.k, mm.n)
        # a weight class the model lacks (shared experts of width 0) casts nothing
        uses = np.where(mm.k * mm.n > 0, tok * tokens * mm.active * per_layer, 0.0)
        weights = weights + mm.params * per_layer * share
        if not fused or mm.name in _TE_OWN_INPUT_CAST:
            acts_in = acts_in + uses * k
        if fused and mm.name not in _TE_FUSED_GRAD_CAST:
            acts_grad = acts_grad + uses * n
    if not fused:
        fwd = _PER_GEMM_CAST_BYTES * (acts_in + weights)
        return fwd, 2.0 * fwd
    fwd = _TE_CAST_BYTES * (acts_in + weights / plan.num_microbatches)
    return fwd, _TE_CAST_BYTES * acts_grad


def _fp8_cast_op(
    arch: ArchBatch, plan: PlanBatch, shape: StageShape, *, device: Device, casts: str
) -> OpCost:
    """FP8 cast kernels of one micro-batch (:func:`fp8_cast_bytes`), about two launches per
    cast GEMM input and output gradient per layer."""
    fwd, bwd = fp8_cast_bytes(arch, plan, shape, casts=casts)
    calls = shape.layers * (8.0 if casts == "per_gemm" else 4.0)
    return _mem_op(device, "fp8_cast", fwd_bytes=fwd, calls=calls, bwd_bytes=bwd)


def stage_ops(
    arch: ArchBatch,
    plan: PlanBatch,
    *,
    device: Device,
    seq_len: int,
    dtype: str,
    options: TrainOptions,
) -> list[OpCost]:
    """All op records of one micro-batch on one device of the slowest stage."""
    shape = StageShape.of(arch, plan, seq_len=seq_len)
    return [
        *gemm_ops(arch, plan, shape, device=device, dtype=dtype, imbalance=options.moe_imbalance),
        *attention_ops(arch, plan, shape, device=device, options=options),
        *memory_ops(arch, plan, shape, device=device, dtype=dtype, options=options),
    ]
