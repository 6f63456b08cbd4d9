"""Settings of the ``proxy_train`` evaluator and the scale-down of a candidate to its proxy.

The candidate is scaled by ``width_factor`` (d_model, heads, d_ff, d_expert) and
``depth_factor`` (layers), capped by ``max_d_model`` / ``max_layers``, and given the byte
vocabulary of :mod:`nas.evaluators.proxy_data`, so that a large reference model becomes a
proxy that trains in seconds to minutes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.evaluators.base import EvaluatorError, check_settings
from nas.evaluators.proxy_data import VOCAB_SIZE
from search_spaces.architecture import Architecture, MoEConfig

__all__ = ["ProxyConfig", "lr_at", "scale_architecture"]


@dataclass(frozen=True, kw_only=True)
class ProxyConfig:
    """Settings of ``proxy_train`` (all optional in an experiment file)."""

    steps: int = 200
    max_steps: int = 20_000
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    warmup_steps: int = -1  # -1 = 10% of steps
    weight_decay: float = 0.1
    aux_loss_coef: float = 0.01  # Switch Transformer alpha (Fedus et al. 2021, sec. 2.2)
    width_factor: float = 1.0
    depth_factor: float = 1.0
    max_layers: int = 0  # 0 = no cap
    max_d_model: int = 0
    data: tuple[str, ...] = ()  # files/folders; empty = the stdlib .py files
    max_corpus_bytes: int = 8_000_000
    eval_every: int = 50
    eval_batches: int = 8
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1  # CPU threads; 1 makes CPU runs bit-reproducible

    def __post_init__(self) -> None:
        for name, (low, high) in _INT_BOUNDS.items():
            _int(name, getattr(self, name), minimum=low, maximum=high)
        _int("warmup_steps", self.warmup_steps, minimum=-1, maximum=10**7)  # -1 = 10% of steps
        for name, (flow, fhigh) in _FLOAT_BOUNDS.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            positive = name in _POSITIVE
            in_range = ok and math.isfinite(value) and flow <= value <= fhigh
            if not in_range or (positive and value <= 0):
                interval = f"({flow:g}, {fhigh:g}]" if positive else f"[{flow:g}, {fhigh:g}]"
                raise EvaluatorError(
                    f"proxy_train.{name}: must be a finite number in {interval}, got {value!r}"
                )
        if self.device not in ("auto", "cpu", "cuda"):
            raise EvaluatorError(
                f"proxy_train.device: must be one of auto, cpu, cuda; got {self.device!r}"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ProxyConfig:
        allowed = {f.name: None for f in dataclasses.fields(cls)}
        check_settings("proxy_train", settings, allowed)
        values = dict(settings)
        if isinstance(values.get("data"), str):
            values["data"] = (values["data"],)
        if "data" in values:
            values["data"] = tuple(str(p) for p in values["data"])
        return cls(**values)


# Bounds of the settings (judgement calls for a proxy that runs on one machine): 1e7 steps
# is months of optimiser steps; a proxy is at most 1,000 layers / 2^17 wide like a space;
# 2^16 tokens per sequence or sequences per batch exceed one device's memory at any width;
# 2^40 corpus bytes (1 TB) is more than one machine holds; seeds are 32-bit (numpy, torch).
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "steps": (0, 10**7),
    "max_steps": (1, 10**7),
    "max_layers": (0, 1000),
    "max_d_model": (0, 2**17),
    "max_corpus_bytes": (0, 2**40),
    "seed": (0, 2**32 - 1),
    "batch_size": (1, 2**16),
    "seq_len": (1, 2**16),
    "eval_every": (1, 10**7),
    "eval_batches": (1, 2**16),
    "threads": (1, 1024),
}
# lr: above ~1 an Adam run diverges, which is reported as a failed run (a test relies on
# it), so only a unit slip past 1e6 is refused; weight decay and the aux-loss coefficient
# are fractions (published values 0.01-0.1); a proxy is a scale-DOWN, so factors are <= 1.
_FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "lr": (0.0, 1e6),
    "width_factor": (0.0, 1.0),
    "depth_factor": (0.0, 1.0),
    "weight_decay": (0.0, 10.0),
    "aux_loss_coef": (0.0, 10.0),
}
_POSITIVE = frozenset({"lr", "width_factor", "depth_factor"})


def _int(name: str, value: object, *, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise EvaluatorError(
            f"proxy_train.{name}: must be an integer in [{minimum}, {maximum}], got {value!r}"
        )


def _scaled(x: int, factor: float, cap: int = 0, lo: int = 1) -> int:
    v = max(lo, round(x * factor))
    return min(v, cap) if cap else v


def scale_architecture(arch: Architecture, cfg: ProxyConfig) -> Architecture:
    """The proxy actually trained: width/depth scaled, capped, byte vocabulary, no MLA."""
    d_model = _scaled(arch.d_model, cfg.width_factor, cfg.max_d_model, lo=8)
    w = d_model / arch.d_model
    group = arch.num_heads // arch.num_kv_heads
    heads = max(1, min(_scaled(arch.num_heads, w), d_model // 4))
    kv = max(1, heads // group)
    heads = kv * max(1, heads // kv)
    head_dim = max(2, (d_model // heads) // 2 * 2)  # RoPE rotates channel pairs
    if (d_model, heads) == (arch.d_model, arch.num_heads) and arch.head_dim % 2 == 0:
        head_dim = arch.head_dim  # unscaled: keep the original attention shape
    layers = _scaled(arch.num_layers, cfg.depth_factor, cfg.max_layers)
    moe: MoEConfig | None = None
    if arch.moe is not None:
        m = arch.moe
        first = min(_scaled(m.first_dense_layers, layers / arch.num_layers, lo=0), layers - 1)
        moe = dataclasses.replace(
            m,
            d_expert=_scaled(m.d_expert, w, lo=4),
            first_dense_layers=first,
            layer_period=min(m.layer_period, layers - first),
        )
    return dataclasses.replace(
        arch,
        name=f"{arch.name}-proxy",
        num_layers=layers,
        d_model=d_model,
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        d_ff=_scaled(arch.d_ff, w, lo=4),
        vocab_size=VOCAB_SIZE,
        learned_positions=cfg.seq_len if arch.learned_positions else 0,
        mla=None,
        moe=moe,
    )


def lr_at(step: int, cfg: ProxyConfig, steps: int) -> float:
    """Linear warmup then cosine decay to 10% (Loshchilov & Hutter 2017, SGDR schedule)."""
    warm = cfg.warmup_steps if cfg.warmup_steps >= 0 else max(1, steps // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))
