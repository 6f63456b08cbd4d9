"""Time real decoder workloads on this machine: training steps and KV-cached decoding.

The profiler (:mod:`hw_profiles.profiler`) measures kernels; this module measures whole
workloads of a decoder shape so that the cost model's estimate for the same shape can be put
beside what the machine does (issue 14: the project's own measured rows). The model is the
project's PyTorch decoder (:class:`nas.evaluators.proxy_model.Decoder`, eager PyTorch with
``scaled_dot_product_attention``), so the matching training stack is ``torchtitan`` without
``torch.compile`` and the matching serving stack is plain PyTorch, kernels issued one by one.

* :func:`time_training`: AdamW steps under bf16 autocast with fp32 parameters (PyTorch's
  automatic mixed precision), one device, no recompute; tokens/s and peak allocated bytes.
* :func:`time_decode`: bf16 weights, a prefill of ``prompt_len`` tokens, then greedy decode
  steps that each attend over a preallocated KV cache; TTFT and time per output token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F

from nas.evaluators.proxy_model import Attention, Block, Decoder, apply_rope
from search_spaces.architecture import Architecture

__all__ = [
    "DecodeTiming",
    "KvCache",
    "TrainTiming",
    "cached_forward",
    "pick_device",
    "time_decode",
    "time_training",
]


@dataclass(frozen=True, kw_only=True)
class TrainTiming:
    step_s: float  # median optimizer step
    tokens_per_s: float
    peak_allocated_bytes: float  # torch.cuda.max_memory_allocated; 0 on the CPU
    peak_reserved_bytes: float  # torch.cuda.max_memory_reserved; 0 on the CPU
    steps: int


@dataclass(frozen=True, kw_only=True)
class DecodeTiming:
    ttft_s: float  # prefill of the prompts and the first token (median over repeats)
    tpot_s: float  # mean time per decode step after the first token (median over repeats)
    peak_allocated_bytes: float


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA device 0 when present, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cuda", "cpu"):
        raise ValueError(f"device: must be one of auto, cuda, cpu; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but torch sees no CUDA device")
    return torch.device(name)


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peaks(device: torch.device) -> tuple[float, float]:
    if device.type != "cuda":
        return 0.0, 0.0
    return float(torch.cuda.max_memory_allocated()), float(torch.cuda.max_memory_reserved())


def time_training(
    arch: Architecture,
    *,
    batch: int,
    seq_len: int,
    device: torch.device,
    steps: int = 8,
    warmup: int = 2,
    seed: int = 0,
) -> TrainTiming:
    """Median AdamW step of ``batch`` random sequences of ``seq_len`` tokens."""
    torch.manual_seed(seed)
    _reset_peak(device)
    with device:  # parameters made and initialised on the device (an 8B model in seconds)
        model = Decoder(arch, max_seq_len=seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    tokens = torch.randint(0, arch.vocab_size, (batch, seq_len + 1), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    sync, times = _sync(device), []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    allocated, reserved = _peaks(device)
    del model, opt
    return TrainTiming(
        step_s=step_s,
        tokens_per_s=batch * seq_len / step_s,
        peak_allocated_bytes=allocated,
        peak_reserved_bytes=reserved,
        steps=steps,
    )


@dataclass
class KvCache:
    """Per layer, keys and values (batch, kv_heads, max_len, head_dim); ``length`` filled."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int = 0

    @classmethod
    def empty(
        cls,
        arch: Architecture,
        *,
        batch: int,
        max_len: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> KvCache:
        shape = (batch, arch.num_kv_heads, max_len, arch.head_dim)
        make = [torch.empty(shape, device=device, dtype=dtype) for _ in range(2 * arch.num_layers)]
        return cls(keys=make[: arch.num_layers], values=make[arch.num_layers :])


def _cached_attention(
    attn: Attention, x: torch.Tensor, tables: torch.Tensor, cache: KvCache, layer: int
) -> torch.Tensor:
    b, s, _ = x.shape
    start, end = cache.length, cache.length + s
    q = attn.q(x).view(b, s, attn.h, attn.hd).transpose(1, 2)
    k, v = attn.kv_proj(x).view(b, s, 2, attn.kv, attn.hd).permute(2, 0, 3, 1, 4)
    if attn.rope:  # positions start .. end-1
        q, k = apply_rope(q, tables[:, start:]), apply_rope(k, tables[:, start:])
    cache.keys[layer][:, :, start:end] = k
    cache.values[layer][:, :, start:end] = v
    keys, values = cache.keys[layer][:, :, :end], cache.values[layer][:, :, :end]
    if attn.kv != attn.h:  # GQA: each K/V head serves h/kv query heads
        keys = keys.repeat_interleave(attn.h // attn.kv, dim=1)
        values = values.repeat_interleave(attn.h // attn.kv, dim=1)
    # the prompt attends causally from position 0; one new token attends to everything cached
    y = F.scaled_dot_product_attention(q, keys, values, is_causal=start == 0 and s > 1)
    out: torch.Tensor = attn.o(y.transpose(1, 2).reshape(b, s, attn.h * attn.hd))
    return out


@torch.no_grad()
def cached_forward(model: Decoder, tokens: torch.Tensor, cache: KvCache) -> torch.Tensor:
    """Logits (batch, vocab) of the last position after ``tokens``, extending ``cache``."""
    x = model.embed(tokens)
    if model.pos is not None:
        x = x + model.pos(torch.arange(cache.length, cache.length + tokens.shape[1],
                                       device=tokens.device))  # fmt: skip
    tables = model.get_buffer("rope")
    for i, module in enumerate(model.blocks):
        block = cast(Block, module)
        h = block.norm1(x)
        a = _cached_attention(block.attn, h, tables, cache, i)
        if block.norm2 is None:
            x = x + a + block.ffn(h)
        else:
            x = x + a
            x = x + block.ffn(block.norm2(x))
    cache.length += tokens.shape[1]
    logits: torch.Tensor = model.head(model.norm(x[:, -1]))
    return logits


def time_decode(
    arch: Architecture,
    *,
    batch: int,
    prompt_len: int,
    gen_len: int,
    device: torch.device,
    repeats: int = 3,
    seed: int = 0,
) -> DecodeTiming:
    """Median over ``repeats`` (after one warm-up) of the prefill-plus-first-token time and
    of the mean greedy decode step for ``gen_len - 1`` further tokens."""
    if arch.moe is not None:
        raise ValueError("time_decode: dense decoders only (the proxy MoE loops over experts)")
    torch.manual_seed(seed)
    _reset_peak(device)
    dtype = torch.bfloat16
    with device:
        model = Decoder(arch, max_seq_len=prompt_len + gen_len).to(dtype=dtype).eval()
    prompts = torch.randint(0, arch.vocab_size, (batch, prompt_len), device=device)
    sync, ttfts, tpots = _sync(device), [], []
    for r in range(repeats + 1):
        cache = KvCache.empty(arch, batch=batch, max_len=prompt_len + gen_len, device=device,
                              dtype=dtype)  # fmt: skip
        sync()
        t0 = time.perf_counter()
        nxt = cached_forward(model, prompts, cache).argmax(-1, keepdim=True)
        sync()
        t1 = time.perf_counter()
        for _ in range(gen_len - 1):
            nxt = cached_forward(model, nxt, cache).argmax(-1, keepdim=True)
        sync()
        t2 = time.perf_counter()
        if r:  # the first pass warms up kernels and the allocator
            ttfts.append(t1 - t0)
            tpots.append((t2 - t1) / max(gen_len - 1, 1))
    allocated, _ = _peaks(device)
    del model
    return DecodeTiming(
        ttft_s=sorted(ttfts)[len(ttfts) // 2],
        tpot_s=sorted(tpots)[len(tpots) // 2],
        peak_allocated_bytes=allocated,
    )
