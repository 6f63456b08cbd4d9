"""Facts about the training software that change its cost: :class:`TrainOptions`, and its
construction from user input (experiment files' ``workload.framework``, ``nas estimate
--framework KEY=VALUE``) with one-line errors that name the key and its allowed values.

The defaults describe a Megatron-Core/Transformer Engine stack: the device's best fused
attention, fused element-wise kernels, attention-core selective recompute, no TP or expert
all-to-all overlap, fp32 gradient reduction, a 1.1 MoE imbalance and no node limit.
Shared by the training model (:mod:`cost_models.train`) and the search (``nas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "ATTENTION_KERNELS",
    "ELEMENTWISE",
    "FRAMEWORK_KEYS",
    "SELECTIVE_POLICIES",
    "AttentionKernel",
    "Elementwise",
    "SelectivePolicy",
    "TrainOptions",
    "parse_pairs",
    "train_options",
]

AttentionKernel = Literal["flash", "flash2", "unfused"]
ATTENTION_KERNELS: tuple[str, ...] = get_args(AttentionKernel)
Elementwise = Literal["fused", "eager"]
ELEMENTWISE: tuple[str, ...] = get_args(Elementwise)
# What ``recompute: selective`` re-runs; the policies are defined in cost_models.train.recompute
SelectivePolicy = Literal["attention", "alternate_mm", "mla_up_proj_mlp"]
SELECTIVE_POLICIES: tuple[str, ...] = get_args(SelectivePolicy)


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Facts about the training software that change its cost (not tuning knobs).

    ``attention_kernel``: ``flash`` (the device's best fused kernel, no S x S matrix; Dao et
    al. 2022), ``flash2`` (FlashAttention-2, e.g. PyTorch SDPA's default flash backend, slower
    than FA3/cuDNN on Hopper; see the device's ``attention_efficiency_fa2``) or ``unfused``
    (Megatron-LM 2021-22: batched GEMMs plus a fused scale-mask-softmax that materialises
    the S x S scores). ``dropout``: dropout after attention and FFN and on the attention
    probabilities (GPT-3-era configs). ``moe_imbalance``: tokens on the busiest expert rank
    over the mean; 1.0 is perfect balance. ``ep_overlap``/``tp_overlap``: the framework hides
    expert all-to-alls / TP collectives behind compute. ``overhead_bytes``: framework memory beyond
    tensors (CUDA context, cuBLAS workspaces, NCCL buffers, allocator slack).
    ``elementwise``: ``fused`` (Megatron/Transformer Engine kernels, or ``torch.compile``) or
    ``eager`` (PyTorch eager mode: each element-wise op its own kernel, see
    :mod:`cost_models.train.memory_ops`). ``selective_recompute``: what ``recompute: selective``
    re-runs: ``attention`` (the attention core; Korthikanti et al. 2022, Megatron-LM),
    ``alternate_mm`` (torchtitan's op-level selective activation checkpointing) or
    ``mla_up_proj_mlp`` (Megatron-Core recompute modules ``mla_up_proj`` and ``mlp``); see
    :mod:`cost_models.train.recompute`."""

    attention_kernel: AttentionKernel = "flash"
    dropout: bool = False
    # Switch Transformer (Fedus et al. 2021, arXiv 2101.03961, section 2.2) trains with
    # capacity factors 1.0-1.25; a dropless router's busiest rank sits in that range. We
    # take the midpoint of the evaluated 1.0-1.25 range, an estimate.
    moe_imbalance: float = 1.1
    # Estimate: CUDA context and cuBLAS/cuDNN workspaces (~0.5-1 GB) plus NCCL channel
    # buffers (~0.5-1 GB per process with several communicators); not a measurement.
    overhead_bytes: float = 2.0e9
    # Expert all-to-all hidden behind another micro-batch's compute (Megatron-Core 0.14
    # ``overlap_moe_expert_parallel_comm``; DeepSeek-V3's DualPipe, arXiv 2412.19437 3.2.1)
    ep_overlap: bool = False
    # TP all-gathers/reduce-scatters pipelined with the GEMMs that consume them (Megatron-Core
    # ``--tp-comm-overlap`` with Transformer Engine userbuffers; Wang et al. 2023, ASPLOS,
    # "Overlap communication with dependent computation via decomposition")
    tp_overlap: bool = False
    # Gradient buffer and reduction dtype: 4 = fp32 (Megatron-LM forces fp32 accumulation and
    # reduction for bf16; FSDP reduce_dtype fp32), 2 = bf16 (Megatron-Core
    # ``grad_reduce_in_fp32=False``, as NeMo/Megatron-Bridge performance recipes set it)
    grad_bytes: float = 4.0
    # Node-limited MoE routing: each token goes to at most this many nodes (0 = unlimited;
    # DeepSeek-V3 uses 4, arXiv 2412.19437 section 2.1.2)
    moe_max_nodes: int = 0
    elementwise: Elementwise = "fused"
    selective_recompute: SelectivePolicy = "attention"
    # Calibrated efficiencies (cost_models/train/calibration.json) or the identity
    calibrated: bool = True

    def __post_init__(self) -> None:
        if self.attention_kernel not in ATTENTION_KERNELS:
            raise ValueError(
                f"attention_kernel: must be one of {', '.join(ATTENTION_KERNELS)}; "
                f"got {self.attention_kernel!r}"
            )
        if self.elementwise not in ELEMENTWISE:
            raise ValueError(
                f"elementwise: must be one of {', '.join(ELEMENTWISE)}; got {self.elementwise!r}"
            )
        if self.selective_recompute not in SELECTIVE_POLICIES:
            raise ValueError(
                f"selective_recompute: must be one of {', '.join(SELECTIVE_POLICIES)}; "
                f"got {self.selective_recompute!r}"
            )
        if not 1.0 <= self.moe_imbalance <= 4.0:
            raise ValueError(f"moe_imbalance: must lie in [1, 4], got {self.moe_imbalance}")
        if self.grad_bytes not in (2.0, 4.0):
            raise ValueError(f"grad_bytes: must be 2 (bf16) or 4 (fp32), got {self.grad_bytes}")
        if self.overhead_bytes < 0:
            raise ValueError(f"overhead_bytes: must be >= 0, got {self.overhead_bytes}")


CHOICES: dict[str, tuple[Any, ...]] = {
    "attention_kernel": ATTENTION_KERNELS,
    "elementwise": ELEMENTWISE,
    "selective_recompute": SELECTIVE_POLICIES,
    "tp_overlap": (False, True),
    "ep_overlap": (False, True),
    "dropout": (False, True),
    "grad_bytes": (2, 4),
}
NUMBERS: dict[str, tuple[float, float]] = {
    "moe_imbalance": (1.0, 4.0),
    "moe_max_nodes": (0.0, 1e6),
    "overhead_bytes": (0.0, 1e12),
}
FRAMEWORK_KEYS: tuple[str, ...] = (*CHOICES, *NUMBERS)
# the TrainOptions field types of the numeric keys
_CASTS: dict[str, type] = {
    "grad_bytes": float,
    "moe_imbalance": float,
    "moe_max_nodes": int,
    "overhead_bytes": float,
}


def _parse_text(key: str, value: Any) -> Any:
    """Values given as text (``--framework tp_overlap=true``) in the field's own type."""
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if key in CHOICES and isinstance(CHOICES[key][0], bool):
        return {"true": True, "false": False, "1": True, "0": False}.get(low, value)
    if key in NUMBERS or key == "grad_bytes":
        try:
            number = float(low)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return low


def train_options(framework: Mapping[str, Any], *, where: str = "framework") -> TrainOptions:
    """:class:`TrainOptions` from ``framework``; ``where`` prefixes the key in errors."""
    values: dict[str, Any] = {}
    for key, raw in framework.items():
        if key not in FRAMEWORK_KEYS:
            raise ValueError(f"{where}.{key}: unknown key; allowed: {', '.join(FRAMEWORK_KEYS)}")
        value = _parse_text(key, raw)
        if key in CHOICES:
            allowed = CHOICES[key]
            if isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed:
                shown = ", ".join(str(a).lower() for a in allowed)
                raise ValueError(f"{where}.{key}: must be one of {shown}; got {raw!r}")
        else:
            low, high = NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}.{key}: must be a number; got {raw!r}")
            if not low <= value <= high:
                raise ValueError(f"{where}.{key}: must lie in [{low:g}, {high:g}]; got {raw!r}")
        values[key] = _CASTS[key](value) if key in _CASTS else value
    return TrainOptions(**values)


def parse_pairs(pairs: list[str], *, flag: str = "--framework") -> dict[str, str]:
    """``["key=value", ...]`` as a mapping; a pair without ``=`` is an error naming ``flag``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"{flag}: expected KEY=VALUE, got {pair!r}; keys: {', '.join(FRAMEWORK_KEYS)}"
            )
        out[key.strip()] = value.strip()
    return out
