"""Validation of the architecture type."""

from __future__ import annotations

import pytest

from search_spaces import SpecError, architecture_from_dict

BASE = {
    "name": "tiny",
    "num_layers": 2,
    "d_model": 64,
    "num_heads": 4,
    "num_kv_heads": 2,
    "d_ff": 128,
    "vocab_size": 256,
}


def test_defaults_fill_head_dim() -> None:
    arch = architecture_from_dict(BASE)
    assert arch.head_dim == 16
    assert arch.gated_ffn and not arch.is_moe


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_layers": 0}, "num_layers"),
        ({"num_kv_heads": 3}, "num_kv_heads"),
        ({"d_model": 66}, "head_dim"),
        ({"ffn_activation": "tanh"}, "ffn_activation"),
        ({"colour": "red"}, "colour"),
        ({"moe": {"num_experts": 4, "top_k": 5, "d_expert": 32}}, "moe.top_k"),
        ({"moe": {"num_experts": 4, "top_k": 1}}, "moe.d_expert"),
        ({"mla": {"kv_lora_rank": 16, "q_lora_rank": 0, "qk_rope_head_dim": 8}}, "mla."),
        ({"tie_embeddings": "yes"}, "tie_embeddings"),
        ({"attention_bias": True}, "attention_bias: must be one of none, qkv, qkvo"),
    ],
)
def test_bad_fields_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        architecture_from_dict({**BASE, **change})
