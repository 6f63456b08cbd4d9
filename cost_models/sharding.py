"""How tensor parallelism shards each weight class of a decoder layer, shared by the training
and inference models."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["TP_SPLIT", "expert_share", "experts_per_rank", "split_widths"]

FloatArray = npt.NDArray[np.float64]
Split = Literal["col", "row", "rep"]

# Which dimension tensor parallelism splits, per weight class (Megatron-LM column/row
# parallel linear layers). MLA's down-projections are replicated across TP ranks, as in
# Megatron-Core's MLA. Experts are handled as grouped GEMMs by each model.
TP_SPLIT: dict[str, Split] = {
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


def split_widths(
    split: Split, k: npt.ArrayLike, n: npt.ArrayLike, ways: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(input, output) width of a ``k x n`` weight on one of ``ways`` ranks: a column-parallel
    layer keeps its input and splits its output, a row-parallel one the reverse, a
    replicated one keeps both."""
    k_, n_, w = (np.asarray(x, dtype=np.float64) for x in (k, n, ways))
    return (k_ / w if split == "row" else k_), (n_ / w if split == "col" else n_)


def experts_per_rank(num_experts: npt.ArrayLike, ep: npt.ArrayLike) -> FloatArray:
    """Routed experts each expert-parallel rank holds: ``E / ep``, or ``ceil(E / ep)`` when
    ``ep`` does not divide the experts, the surplus slots holding redundant copies of experts
    (DeepSeek-V3 decoding places 256 routed experts on 320 GPUs, one per GPU, the spare GPUs
    holding redundant and shared experts; arXiv 2412.19437, section 3.4.2). Routing is taken
    as balanced over all copies."""
    experts = np.maximum(np.asarray(num_experts, dtype=np.float64), 1.0)
    return np.ceil(experts / np.asarray(ep, dtype=np.float64))


def expert_share(num_experts: npt.ArrayLike, ep: npt.ArrayLike) -> FloatArray:
    """The fraction of the routed-expert parameters one expert-parallel rank holds
    (``1 / ep`` when ``ep`` divides the experts)."""
    experts = np.maximum(np.asarray(num_experts, dtype=np.float64), 1.0)
    return experts_per_rank(experts, ep) / experts
