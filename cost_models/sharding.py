"""How tensor parallelism shards each weight class of a decoder layer, shared by the training
and inference models."""

from __future__ import annotations

from typing import Literal

__all__ = ["TP_SPLIT"]

# Which dimension tensor parallelism splits, per weight class (Megatron-LM column/row
# parallel linear layers). MLA's down-projections are replicated across TP ranks, as in
# Megatron-Core's MLA. Experts are handled as grouped GEMMs by each model.
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
