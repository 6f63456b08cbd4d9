"""Derived counts of an architecture, vectorised over arrays of candidates.

One place for parameter counts, matmul shapes, FLOPs per token and KV-cache bytes. Every
function takes an :class:`ArchBatch` (numpy arrays, one entry per candidate); the scalar
helpers at the end wrap a single :class:`Architecture`.

Conventions (stated because published figures differ, see ``shared/reference/README.md``):

* ``embedding`` parameters are the input table, the output table when untied, and a learned
  position table. Kaplan et al. 2020 exclude them; Chinchilla includes them.
* ``active`` parameters are those one token touches: all non-expert weights, ``top_k``
  routed experts and the shared experts per MoE layer, plus both embedding tables (the
  convention behind Mixtral's 12.9B, Jiang et al. 2024, arXiv 2401.04088).
* forward FLOPs per token = 2 x (active matmul weights including the LM head, not the input
  lookup) + attention score and value products. Attention per layer and token is
  ``2 * S * heads * (d_qk + d_v)`` for full attention (PaLM, arXiv 2204.02311, appendix B;
  Narayanan et al. 2021, arXiv 2104.04473, eq. 3 uses the same 4*S*h term); the causal
  convention counts half of it (only the lower triangle is computed, as Megatron-Bridge and
  FlashAttention report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import numpy.typing as npt

from search_spaces.architecture import Architecture

FloatArray = npt.NDArray[np.float64]
AttentionConvention = Literal["causal", "full"]

# Bytes per element of each storage dtype (int4 packs two values per byte).
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"dtype: must be one of {', '.join(DTYPE_BYTES)}; got {dtype!r}") from None


@dataclass(frozen=True, kw_only=True)
class ArchBatch:
    """Architectures as parallel float64 arrays. Absent features are 0 (no MLA, no MoE)."""

    num_layers: FloatArray
    d_model: FloatArray
    num_heads: FloatArray
    num_kv_heads: FloatArray
    head_dim: FloatArray
    d_ff: FloatArray
    vocab_size: FloatArray
    gated: FloatArray  # 1 for SwiGLU/GeGLU (three FFN matrices), 0 otherwise
    tied: FloatArray
    norm_factor: FloatArray  # parameters per norm per channel: 1 RMSNorm, 2 LayerNorm
    bias: FloatArray
    qkv_bias: FloatArray  # 1: biases on the q, k, v outputs (implied by ``bias``)
    o_bias: FloatArray  # 1: a bias on the attention output projection (implied by ``bias``)
    learned_positions: FloatArray
    parallel: FloatArray  # 1: parallel attention + MLP block (one norm, one TP all-reduce)
    mtp_layers: FloatArray  # multi-token prediction modules (training only)
    kv_lora_rank: FloatArray
    q_lora_rank: FloatArray
    qk_rope_head_dim: FloatArray
    qk_nope_head_dim: FloatArray
    v_head_dim: FloatArray
    num_experts: FloatArray
    top_k: FloatArray
    d_expert: FloatArray
    num_shared_experts: FloatArray
    num_moe_layers: FloatArray

    def __len__(self) -> int:
        return int(self.num_layers.shape[0])

    @classmethod
    def from_architectures(cls, archs: Sequence[Architecture]) -> ArchBatch:
        rows = [_row(a) for a in archs]
        return cls(
            **{f.name: np.array([r[f.name] for r in rows], dtype=np.float64) for f in fields(cls)}
        )

    @classmethod
    def from_arrays(cls, **arrays: npt.ArrayLike) -> ArchBatch:
        """Build from keyword arrays; omitted optional features default to absent (0)."""
        n = len(np.atleast_1d(np.asarray(arrays["num_layers"])))
        out: dict[str, FloatArray] = {}
        for f in fields(cls):
            value = arrays.get(f.name, _DEFAULTS.get(f.name))
            if value is None:
                raise ValueError(f"{f.name}: required array is missing")
            out[f.name] = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
        return cls(**out)

    def take(self, index: npt.ArrayLike) -> ArchBatch:
        return ArchBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def is_mla(self) -> npt.NDArray[np.bool_]:
        return self.kv_lora_rank > 0

    @property
    def blocks_per_layer(self) -> FloatArray:
        """Residual blocks of a layer, each with its own input norm and ending in one TP
        reduction: attention and MLP (2), or one parallel attention + MLP block (1)."""
        out: FloatArray = 2.0 - self.parallel
        return out

    @property
    def head_passes(self) -> FloatArray:
        """Passes through the output head (and the loss) per training token: the model's,
        plus one per multi-token prediction module, which shares the head."""
        out: FloatArray = 1.0 + self.mtp_layers
        return out

    @property
    def num_dense_layers(self) -> FloatArray:
        return self.num_layers - self.num_moe_layers


_DEFAULTS: dict[str, float] = {
    "gated": 1.0,
    "tied": 0.0,
    "norm_factor": 1.0,
    "bias": 0.0,
    "qkv_bias": 0.0,
    "o_bias": 0.0,
    "learned_positions": 0.0,
    "parallel": 0.0,
    "mtp_layers": 0.0,
    "kv_lora_rank": 0.0,
    "q_lora_rank": 0.0,
    "qk_rope_head_dim": 0.0,
    "qk_nope_head_dim": 0.0,
    "v_head_dim": 0.0,
    "num_experts": 0.0,
    "top_k": 0.0,
    "d_expert": 0.0,
    "num_shared_experts": 0.0,
    "num_moe_layers": 0.0,
    "head_dim": 0.0,
}


def _row(a: Architecture) -> dict[str, float]:
    mla, moe = a.mla, a.moe
    return {
        "num_layers": a.num_layers,
        "d_model": a.d_model,
        "num_heads": a.num_heads,
        "num_kv_heads": a.num_kv_heads,
        "head_dim": a.head_dim,
        "d_ff": a.d_ff,
        "vocab_size": a.vocab_size,
        "gated": float(a.gated_ffn),
        "tied": float(a.tie_embeddings),
        "norm_factor": 2.0 if a.norm == "layernorm" else 1.0,
        "bias": float(a.bias),
        "qkv_bias": float(a.attention_bias in ("qkv", "qkvo")),
        "o_bias": float(a.attention_bias == "qkvo"),
        "learned_positions": a.learned_positions,
        "parallel": float(a.parallel_block),
        "mtp_layers": a.mtp_layers,
        "kv_lora_rank": mla.kv_lora_rank if mla else 0,
        "q_lora_rank": mla.q_lora_rank if mla else 0,
        "qk_rope_head_dim": mla.qk_rope_head_dim if mla else 0,
        "qk_nope_head_dim": mla.qk_nope_head_dim if mla else 0,
        "v_head_dim": mla.v_head_dim if mla else 0,
        "num_experts": moe.num_experts if moe else 0,
        "top_k": moe.top_k if moe else 0,
        "d_expert": moe.d_expert if moe else 0,
        "num_shared_experts": moe.num_shared_experts if moe else 0,
        "num_moe_layers": a.num_moe_layers,
    }


@dataclass(frozen=True, kw_only=True)
class Matmul:
    """One weight matrix class: ``k x n`` weights, stored ``stored`` times in the model and
    applied ``active`` times per token (both summed over layers)."""

    name: str
    k: FloatArray
    n: FloatArray
    stored: FloatArray
    active: FloatArray

    @property
    def params(self) -> FloatArray:
        return self.k * self.n * self.stored

    @property
    def active_params(self) -> FloatArray:
        return self.k * self.n * self.active


def qk_head_dim(b: ArchBatch) -> FloatArray:
    return np.where(b.is_mla, b.qk_nope_head_dim + b.qk_rope_head_dim, b.head_dim)


def v_head_dim(b: ArchBatch) -> FloatArray:
    return np.where(b.is_mla, b.v_head_dim, b.head_dim)


def matmuls(b: ArchBatch) -> list[Matmul]:
    """Every weight matmul of the model except the LM head (see :func:`lm_head`)."""
    L, d, h, mla = b.num_layers, b.d_model, b.num_heads, b.is_mla
    dqk, dv = qk_head_dim(b), v_head_dim(b)
    q_lora = np.where(mla, b.q_lora_rank, 0.0)
    has_q_lora = q_lora > 0
    moe_l, dense_l = b.num_moe_layers, b.num_dense_layers
    up = 1.0 + b.gated
    zeros = np.zeros_like(L)

    def mm(
        name: str,
        k: FloatArray,
        n: FloatArray,
        stored: FloatArray,
        active: FloatArray | None = None,
    ) -> Matmul:
        return Matmul(
            name=name, k=k, n=n, stored=stored, active=stored if active is None else active
        )

    q_layers = np.where(has_q_lora, zeros, L)
    shared_width = b.d_expert * b.num_shared_experts
    return [
        mm("attn_q", d, h * dqk, q_layers),
        mm("attn_q_a", d, q_lora, np.where(has_q_lora, L, zeros)),
        mm("attn_q_b", q_lora, h * dqk, np.where(has_q_lora, L, zeros)),
        mm("attn_kv", d, 2 * b.num_kv_heads * b.head_dim, np.where(mla, zeros, L)),
        mm("attn_kv_a", d, b.kv_lora_rank + b.qk_rope_head_dim, np.where(mla, L, zeros)),
        mm("attn_kv_b", b.kv_lora_rank, h * (b.qk_nope_head_dim + dv), np.where(mla, L, zeros)),
        mm("attn_o", h * dv, d, L),
        mm("ffn_up", d, up * b.d_ff, dense_l),
        mm("ffn_down", b.d_ff, d, dense_l),
        mm("expert_up", d, up * b.d_expert, moe_l * b.num_experts, moe_l * b.top_k),
        mm("expert_down", b.d_expert, d, moe_l * b.num_experts, moe_l * b.top_k),
        mm("shared_up", d, up * shared_width, moe_l),
        mm("shared_down", shared_width, d, moe_l),
        mm("router", d, b.num_experts, moe_l),
    ]


def lm_head(b: ArchBatch) -> Matmul:
    one = np.ones_like(b.d_model)
    return Matmul(name="lm_head", k=b.d_model, n=b.vocab_size, stored=one - b.tied, active=one)


def _norm_and_bias_params(b: ArchBatch) -> FloatArray:
    d = b.d_model
    # two norms per layer (one in a parallel block) plus the final norm; MLA adds norms on
    # its two latent vectors
    norms = b.norm_factor * (
        d * (b.blocks_per_layer * b.num_layers + 1)
        + b.num_layers * (b.kv_lora_rank + b.q_lora_rank)
    )
    widths = {m.name: m.n * m.stored for m in matmuls(b)}
    out_widths = sum((w for name, w in widths.items() if name != "router"), np.zeros_like(d))
    # attention-only biases (Qwen2: q, k, v; Llama attention_bias: q, k, v, o); GQA/MHA
    # projections only (the architecture refuses them with MLA); counted once under ``bias``
    attention = b.qkv_bias * (widths["attn_q"] + widths["attn_kv"]) + b.o_bias * widths["attn_o"]
    return norms + np.where(b.bias > 0, out_widths, attention)


def embedding_params(b: ArchBatch) -> FloatArray:
    table = b.vocab_size * b.d_model
    return table * (2.0 - b.tied) + b.learned_positions * b.d_model


def non_embedding_params(b: ArchBatch) -> FloatArray:
    weights = sum((m.params for m in matmuls(b)), np.zeros_like(b.d_model))
    return weights + _norm_and_bias_params(b)


def total_params(b: ArchBatch) -> FloatArray:
    return non_embedding_params(b) + embedding_params(b)


def expert_params(b: ArchBatch) -> FloatArray:
    """Routed-expert weights (the part expert parallelism shards)."""
    return sum(
        (m.params for m in matmuls(b) if m.name.startswith("expert_")), np.zeros_like(b.d_model)
    )


def active_params(b: ArchBatch) -> FloatArray:
    weights = sum((m.active_params for m in matmuls(b)), np.zeros_like(b.d_model))
    return weights + _norm_and_bias_params(b) + embedding_params(b)


def matmul_flops_per_token(b: ArchBatch) -> FloatArray:
    """Forward matmul FLOPs per token: 2 per multiply-add, LM head included."""
    body = sum((m.active_params for m in matmuls(b)), np.zeros_like(b.d_model))
    return 2.0 * (body + lm_head(b).active_params)


def attention_flops_per_token(
    b: ArchBatch, *, seq_len: float | FloatArray, convention: AttentionConvention = "causal"
) -> FloatArray:
    """Forward FLOPs of the QK^T and AV products per token at context length ``seq_len``."""
    if convention not in ("causal", "full"):
        raise ValueError(f"convention: must be causal or full; got {convention!r}")
    full = (
        2.0
        * b.num_layers
        * np.asarray(seq_len, dtype=np.float64)
        * b.num_heads
        * (qk_head_dim(b) + v_head_dim(b))
    )
    return full / 2.0 if convention == "causal" else full


def forward_flops_per_token(
    b: ArchBatch, *, seq_len: float | FloatArray, convention: AttentionConvention = "causal"
) -> FloatArray:
    return matmul_flops_per_token(b) + attention_flops_per_token(
        b, seq_len=seq_len, convention=convention
    )


def kv_cache_bytes_per_token(b: ArchBatch, *, dtype: str = "bf16") -> FloatArray:
    """Bytes of K and V cached per token over all layers. MLA caches the compressed latent
    and the shared RoPE key: ``layers * (kv_lora_rank + rope_dim)`` (DeepSeek-V2, section 2.1.2)."""
    per_elem = dtype_bytes(dtype)
    gqa = 2.0 * b.num_kv_heads * b.head_dim
    mla = b.kv_lora_rank + b.qk_rope_head_dim
    return b.num_layers * np.where(b.is_mla, mla, gqa) * per_elem


@dataclass(frozen=True, kw_only=True)
class ModelCounts:
    """Scalar summary of one architecture (what ``nas models show`` prints)."""

    params_total: float
    params_active: float
    params_embedding: float
    params_non_embedding: float
    kv_cache_bytes_per_token: float
    flops_per_token: float  # forward, causal attention, at ``seq_len``
    seq_len: int


def model_counts(arch: Architecture, *, seq_len: int = 4096, dtype: str = "bf16") -> ModelCounts:
    b = ArchBatch.from_architectures([arch])
    return ModelCounts(
        params_total=float(total_params(b)[0]),
        params_active=float(active_params(b)[0]),
        params_embedding=float(embedding_params(b)[0]),
        params_non_embedding=float(non_embedding_params(b)[0]),
        kv_cache_bytes_per_token=float(kv_cache_bytes_per_token(b, dtype=dtype)[0]),
        flops_per_token=float(forward_flops_per_token(b, seq_len=seq_len)[0]),
        seq_len=seq_len,
    )
