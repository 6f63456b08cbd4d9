"""What ``recompute: selective`` re-runs, by the framework's policy
(:attr:`cost_models.options.TrainOptions.selective_recompute`).

* ``attention``: the attention core (QK^T, softmax, AV), Korthikanti et al. 2022 (arXiv
  2205.05198, section 5); Megatron-Core ``recompute_modules=["core_attn"]``.
* ``alternate_mm``: torchtitan's op-level selective activation checkpointing
  (``selective_ac_option = "op"``). It saves the output of every op on its save list
  (matmuls, the attention kernel) except every second matmul of a block, and re-runs
  everything else in the backward pass. In a dense block the matmuls run q, k, v, o, then
  gate, up, down (gated) or up, down, so k, o and up (gated) or down are recomputed.
  Element-wise ops are all recomputed and the attention kernel is not. The LM head and the
  loss lie outside the blocks. Matmuls of MLA and MoE blocks count as half recomputed
  (every second one, on average).
* ``mla_up_proj``: the MLA up-projections (and RoPE) re-run from the saved latents, MLPs kept:
  DeepSeek-V3's recomputation of RMSNorm and MLA up-projections (arXiv 2412.19437, section
  3.2.3; the norms' share is negligible); Megatron-Core ``recompute_modules=["mla_up_proj"]``.
* ``mla_up_proj_mlp``: Megatron-Core ``recompute_modules=["mla_up_proj", "mlp"]``, as in
  Megatron-Bridge's DeepSeek-V3 H100 recipe. The MLA up-projections (and RoPE) are re-run
  from the saved latents, and so are the dense layers' MLPs; memory keeps the latents and
  the MLP input (:mod:`cost_models.train.memory`).
* ``dots``: MaxText's ``remat_policy: minimal`` (``MaxText/layers/models.py`` at commit
  76bd53b0f, Dec 2023: ``jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims``). Of
  the values the backward pass needs, a layer keeps the outputs of its weight matmuls (dot
  products without batch dimensions: Q, K, V, the MLP up-projections, MLA's latents and
  up-projections, the router logits) and re-runs everything else: the norms, RoPE, the
  activation function, the token permutation and the attention kernel (its QK^T and AV are
  dot products with batch dimensions, so the attention output and its log-sum-exp are
  recomputed). No weight matmul is re-run. Memory: :mod:`cost_models.train.memory`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cost_models.options import SelectivePolicy
from search_spaces.counts import ArchBatch, matmuls

__all__ = ["selective_flops_per_token", "selective_share"]

FloatArray = npt.NDArray[np.float64]

_ATTENTION_CORE = ("attention", "attention_bmm", "softmax")
_MLA_UP_PROJ = ("attn_q_b", "attn_kv_b", "rope")
_MLA_UP_PROJ_MLP = (*_MLA_UP_PROJ, "ffn_up", "ffn_down")
# the attention core and the element-wise ops whose outputs the backward pass reads
_DOTS = (*_ATTENTION_CORE, "norms", "rope", "activation", "moe_permute")


def _alternate_mm_share(arch: ArchBatch, name: str) -> FloatArray | float:
    gated = arch.gated > 0
    shares: dict[str, FloatArray | float] = {
        "attn_q": 0.0,
        "attn_kv": 0.5,  # k of the fused k, v record
        "attn_o": 1.0,
        "ffn_up": np.where(gated, 0.5, 0.0),  # up of gate, up
        "ffn_down": np.where(gated, 0.0, 1.0),
        "attention": 0.0,
        "attention_bmm": 0.0,
        "softmax": 1.0,
        "lm_head": 0.0,
        "cross_entropy": 0.0,
    }
    if name in shares:
        return shares[name]
    return 0.5 if name.startswith(("attn_", "expert_", "shared_", "router")) else 1.0


def selective_share(arch: ArchBatch, name: str, policy: SelectivePolicy) -> FloatArray | float:
    """Fraction of the op record ``name`` (see :mod:`cost_models.train.ops`) that selective
    recompute re-runs under ``policy``."""
    if policy == "alternate_mm":
        return _alternate_mm_share(arch, name)
    if policy == "mla_up_proj_mlp":
        return 1.0 if name in _MLA_UP_PROJ_MLP else 0.0
    if policy == "mla_up_proj":
        return 1.0 if name in _MLA_UP_PROJ else 0.0
    if policy == "dots":
        return 1.0 if name in _DOTS else 0.0
    return 1.0 if name in _ATTENTION_CORE else 0.0


def selective_flops_per_token(
    arch: ArchBatch, *, attention_fwd_flops: FloatArray, policy: SelectivePolicy
) -> FloatArray:
    """Forward FLOPs per token that selective recompute re-runs (for HFU)."""
    if policy in ("attention", "dots"):  # dots re-runs no weight matmul
        return attention_fwd_flops
    out = np.zeros_like(arch.d_model)
    for mm in matmuls(arch):
        out = out + 2.0 * mm.active_params * selective_share(arch, mm.name, policy)
    return out
