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
        for name in ("steps", "max_layers", "max_d_model", "max_corpus_bytes", "seed"):
            _int(name, getattr(self, name), minimum=0)
        for name in ("max_steps", "batch_size", "seq_len", "eval_every", "eval_batches"):
            _int(name, getattr(self, name), minimum=1)
        _int("threads", self.threads, minimum=1)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            raise EvaluatorError(
                f"proxy_train.warmup_steps: must be an integer, got {self.warmup_steps!r}"
            )
        for name in ("lr", "width_factor", "depth_factor"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise EvaluatorError(
                    f"proxy_train.{name}: must be a positive number, got {value!r}"
                )
        for name in ("weight_decay", "aux_loss_coef"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise EvaluatorError(f"proxy_train.{name}: must be >= 0, got {value!r}")
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


def _int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EvaluatorError(f"proxy_train.{name}: must be an integer >= {minimum}, got {value!r}")


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
