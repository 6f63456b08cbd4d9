"""A real decoder-only transformer in PyTorch, built from an :class:`Architecture`.

Pre-norm blocks (RMSNorm, Zhang & Sennrich 2019, or LayerNorm), rotary position embeddings
(RoPE, Su et al. 2021, arXiv 2104.09864) or a learned position table, grouped-query attention
(Ainslie et al. 2023, arXiv 2305.13245), SwiGLU/GeGLU (Shazeer 2020, arXiv 2002.05202) or
GELU/ReLU feed-forward, and mixture-of-experts layers with top-k routing and the Switch
Transformer auxiliary load-balancing loss (Fedus et al. 2021, arXiv 2101.03961, eq. 4):
``aux = alpha * N * sum_i f_i * P_i`` with f_i the fraction of routed assignments sent to
expert i and P_i the mean router probability of expert i. MLA is not modelled: an MLA
architecture is trained as ordinary multi-head attention with the same head count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.architecture import Architecture

__all__ = ["Decoder", "RMSNorm", "apply_rope", "moe_layer_flags", "rope_tables"]


class RMSNorm(nn.Module):
    """Root-mean-square layer norm (Zhang and Sennrich 2019, arXiv 1910.07467)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _norm(arch: Architecture, dim: int) -> nn.Module:
    # LayerNorm keeps its bias (2 parameters per channel, the convention of counts.py)
    return nn.LayerNorm(dim) if arch.norm == "layernorm" else RMSNorm(dim)


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """cos/sin tables, shape (2, seq, head_dim/2) (Su et al. 2021, eq. 34)."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    return torch.stack([ang.cos(), ang.sin()])


def apply_rope(x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels of x (batch, heads, seq, head_dim)."""
    cos, sin = tables[0][: x.shape[-2]], tables[1][: x.shape[-2]]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


class Attention(nn.Module):
    """Causal multi-head attention with grouped KV heads (GQA); rotary positions unless the
    architecture learns its positions."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.h, self.kv, self.hd = arch.num_heads, arch.num_kv_heads, arch.head_dim
        d = arch.d_model
        qkv_bias = arch.bias or arch.attention_bias in ("qkv", "qkvo")
        self.q = nn.Linear(d, self.h * self.hd, bias=qkv_bias)
        self.kv_proj = nn.Linear(d, 2 * self.kv * self.hd, bias=qkv_bias)
        self.o = nn.Linear(self.h * self.hd, d, bias=arch.bias or arch.attention_bias == "qkvo")
        self.rope = arch.learned_positions == 0

    def forward(self, x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k, v = self.kv_proj(x).view(b, s, 2, self.kv, self.hd).permute(2, 0, 3, 1, 4)
        if self.rope:
            q, k = apply_rope(q, tables), apply_rope(k, tables)
        if self.kv != self.h:  # GQA: each K/V head serves h/kv query heads
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out: torch.Tensor = self.o(y.transpose(1, 2).reshape(b, s, self.h * self.hd))
        return out


class FeedForward(nn.Module):
    """The MLP of a block: gated (SwiGLU/GeGLU) or plain, ``hidden`` channels wide."""

    def __init__(self, arch: Architecture, hidden: int) -> None:
        super().__init__()
        self.gated = arch.gated_ffn
        self.act = F.silu if arch.ffn_activation == "swiglu" else F.gelu
        if arch.ffn_activation == "relu":
            self.act = F.relu
        self.up = nn.Linear(arch.d_model, hidden * (2 if self.gated else 1), bias=arch.bias)
        self.down = nn.Linear(hidden, arch.d_model, bias=arch.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.gated:
            gate, lin = h.chunk(2, dim=-1)
            h = self.act(gate) * lin
        else:
            h = self.act(h)
        out: torch.Tensor = self.down(h)
        return out


class MoE(nn.Module):
    """Top-k routed experts plus optional shared experts; stores its auxiliary loss."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        assert arch.moe is not None
        m = arch.moe
        self.k, self.n = m.top_k, m.num_experts
        self.router = nn.Linear(arch.d_model, m.num_experts, bias=False)
        self.experts = nn.ModuleList(FeedForward(arch, m.d_expert) for _ in range(m.num_experts))
        self.shared = (
            FeedForward(arch, m.d_expert * m.num_shared_experts) if m.num_shared_experts else None
        )
        self.aux_loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        probs = self.router(flat).float().softmax(dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        if self.k > 1:  # renormalise the chosen gates (Mixtral convention)
            top_p = top_p / top_p.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (top_i == e).nonzero(as_tuple=True)
            if rows.numel():
                gate = top_p[rows, slot].unsqueeze(-1).to(flat.dtype)
                out.index_add_(0, rows, expert(flat[rows]) * gate)
        # Switch Transformer eq. 4 (without alpha): N * sum_i f_i P_i; 1.0 when balanced.
        f = torch.bincount(top_i.flatten(), minlength=self.n).float() / top_i.numel()
        self.aux_loss = self.n * (f * probs.mean(0)).sum()
        if self.shared is not None:
            out = out + self.shared(flat)
        return out.view(shape)


class Block(nn.Module):
    """One pre-norm decoder block: attention then the MLP (dense or MoE), each residual; with
    ``parallel_block`` both read one normed input and add to the same residual (GPT-J, PaLM)."""

    def __init__(self, arch: Architecture, *, moe: bool) -> None:
        super().__init__()
        self.norm1 = _norm(arch, arch.d_model)
        self.norm2 = None if arch.parallel_block else _norm(arch, arch.d_model)
        self.attn = Attention(arch)
        self.ffn: nn.Module = MoE(arch) if moe else FeedForward(arch, arch.d_ff)

    def forward(self, x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        if self.norm2 is None:
            h = self.norm1(x)
            parallel: torch.Tensor = x + self.attn(h, tables) + self.ffn(h)
            return parallel
        x = x + self.attn(self.norm1(x), tables)
        out: torch.Tensor = x + self.ffn(self.norm2(x))
        return out


def moe_layer_flags(arch: Architecture) -> list[bool]:
    """Which layers are MoE: after ``first_dense_layers``, every ``layer_period``-th layer,
    so that their count equals ``Architecture.num_moe_layers``."""
    if arch.moe is None:
        return [False] * arch.num_layers
    first, period = arch.moe.first_dense_layers, arch.moe.layer_period
    return [i >= first and (i - first + 1) % period == 0 for i in range(arch.num_layers)]


class Decoder(nn.Module):
    """Decoder-only LM; ``forward`` returns logits (batch, seq, vocab)."""

    def __init__(self, arch: Architecture, *, max_seq_len: int) -> None:
        super().__init__()
        self.arch = arch
        self.embed = nn.Embedding(arch.vocab_size, arch.d_model)
        self.pos = (
            nn.Embedding(min(arch.learned_positions, max_seq_len), arch.d_model)
            if arch.learned_positions
            else None
        )
        self.blocks = nn.ModuleList(Block(arch, moe=f) for f in moe_layer_flags(arch))
        self.norm = _norm(arch, arch.d_model)
        self.head = nn.Linear(arch.d_model, arch.vocab_size, bias=False)
        if arch.tie_embeddings:
            self.head.weight = self.embed.weight
        self.register_buffer("rope", rope_tables(max_seq_len, arch.head_dim), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 style: N(0, 0.02), residual output projections scaled by 1/sqrt(2 * layers)
        # (Radford et al. 2019, section 2.3).
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith(("o.weight", "down.weight")):
                    std /= math.sqrt(2 * len(self.blocks))
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x, self.rope)
        logits: torch.Tensor = self.head(self.norm(x))
        return logits

    def aux_loss(self) -> torch.Tensor:
        """Mean Switch load-balancing term over MoE layers (0 for a dense model)."""
        terms = [b.ffn.aux_loss for b in self.blocks if isinstance(b.ffn, MoE)]
        return (
            torch.stack(terms).mean() if terms else torch.zeros((), device=self.head.weight.device)
        )
