"""The torch proxy model and real proxy training on the default corpus."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nas.evaluators import EvaluationFailed, Pruned, get_evaluator
from nas.evaluators.proxy_config import ProxyConfig, scale_architecture
from nas.evaluators.proxy_data import load_corpus
from nas.evaluators.proxy_model import Decoder, MoE, moe_layer_flags, rope_tables
from nas.evaluators.proxy_train import train_proxy
from search_spaces.architecture import Architecture, MoEConfig
from search_spaces.counts import ArchBatch, total_params

# ~0.85M parameters: 4 layers, d_model 128, GQA 4/2, SwiGLU 384, byte vocabulary
TINY = Architecture(
    name="tiny", num_layers=4, d_model=128, num_heads=4, num_kv_heads=2, d_ff=384, vocab_size=256
)


def test_decoder_parameter_count_matches_the_analytic_count() -> None:
    for arch in (
        TINY,
        dataclasses.replace(TINY, ffn_activation="gelu", norm="layernorm", tie_embeddings=True),
        dataclasses.replace(TINY, attention_bias="qkv"),  # Qwen2
        dataclasses.replace(TINY, attention_bias="qkvo"),  # Llama attention_bias: true
        dataclasses.replace(TINY, parallel_block=True, norm="layernorm"),  # GPT-J / PaLM
        dataclasses.replace(
            TINY,
            moe=MoEConfig(
                num_experts=4,
                top_k=2,
                d_expert=96,
                num_shared_experts=1,
                first_dense_layers=1,
                layer_period=1,
            ),
        ),
    ):
        model = Decoder(arch, max_seq_len=32)
        n = sum(p.numel() for p in model.parameters())
        assert n == int(total_params(ArchBatch.from_architectures([arch]))[0])


def test_moe_layers_and_balanced_aux_loss() -> None:
    arch = dataclasses.replace(
        TINY,
        moe=MoEConfig(num_experts=4, top_k=1, d_expert=64, first_dense_layers=1, layer_period=2),
    )
    assert moe_layer_flags(arch) == [False, False, True, False]
    assert sum(moe_layer_flags(arch)) == arch.num_moe_layers
    torch.manual_seed(0)
    model = Decoder(arch, max_seq_len=32)
    logits = model(torch.randint(0, 256, (2, 32)))
    assert logits.shape == (2, 32, 256)
    aux = float(model.aux_loss().detach())
    assert 0.9 < aux < 2.0  # Switch eq. 4 is 1.0 at perfect balance and N at collapse
    assert isinstance(model.blocks[2].ffn, MoE)


def test_scale_architecture_keeps_constraints() -> None:
    big = Architecture(
        name="big",
        num_layers=32,
        d_model=4096,
        num_heads=32,
        num_kv_heads=8,
        d_ff=14336,
        vocab_size=128256,
    )
    p = scale_architecture(big, ProxyConfig(width_factor=1 / 32, depth_factor=0.125, max_layers=3))
    assert (p.num_layers, p.d_model, p.vocab_size) == (3, 128, 256)
    assert p.num_heads % p.num_kv_heads == 0 and p.head_dim % 2 == 0
    assert p.d_ff == 448


def test_corpus_split_is_deterministic_and_nontrivial() -> None:
    c = load_corpus()
    assert c.train.size > 1_000_000 and c.val.size > 50_000
    assert 2.5 < c.unigram_entropy_nats() < 4.5  # bytes of Python source


def _cfg(**kw: object) -> ProxyConfig:
    base = dict(
        steps=150, seq_len=64, batch_size=16, eval_every=75, lr=3e-3, max_corpus_bytes=4_000_000
    )
    base.update(kw)
    return ProxyConfig(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_proxy_learns_well_below_unigram_entropy_and_seeds_agree() -> None:
    a = train_proxy(TINY, _cfg(seed=0))
    b = train_proxy(TINY, _cfg(seed=1))
    print(
        f"val loss seed0 {a.loss:.4f} seed1 {b.loss:.4f} unigram {a.unigram_entropy:.4f} "
        f"tokens/s {a.tokens_per_s:.0f} wall {a.wall_s:.1f}s"
    )
    assert a.loss < a.unigram_entropy - 0.6
    assert abs(a.loss - b.loss) < 0.08
    assert a.curve[0][1] > a.curve[-1][1]
    assert a.tokens_per_s > 0 and a.peak_memory_bytes > 0


def test_same_seed_is_bit_reproducible_and_pruning_raises() -> None:
    cfg = _cfg(steps=6, eval_every=3, seq_len=32, batch_size=4)
    assert train_proxy(TINY, cfg).curve == train_proxy(TINY, cfg).curve
    with pytest.raises(Pruned) as exc:
        train_proxy(TINY, cfg, report=lambda step, loss: step >= 3)
    assert exc.value.step == 3


def test_huge_learning_rate_is_reported_as_failed_not_as_a_loss() -> None:
    ev = get_evaluator(
        "proxy_train", {"steps": 40, "lr": 1e6, "seq_len": 32, "batch_size": 4, "eval_every": 20}
    )
    with pytest.raises(EvaluationFailed) as exc:
        ev.evaluate(TINY, tokens=0)
    assert "lr 1e+06" in exc.value.reason


def test_parallel_block_adds_attention_and_mlp_of_one_normed_input() -> None:
    """y = x + Attn(LN(x)) + MLP(LN(x)): zeroing the MLP's output leaves x + Attn(LN(x))."""
    arch = dataclasses.replace(TINY, parallel_block=True)
    torch.manual_seed(0)
    block = Decoder(arch, max_seq_len=8).blocks[0]
    x, tables = torch.randn(1, 8, 128), rope_tables(8, arch.head_dim)
    with torch.no_grad():
        for p in block.ffn.parameters():
            p.zero_()
        expected = x + block.attn(block.norm1(x), tables)
        assert torch.allclose(block(x, tables), expected)
