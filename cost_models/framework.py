"""Training-software facts from user input (experiment files, ``nas estimate --framework``):
a mapping of :class:`cost_models.ops.TrainOptions` fields, checked with one-line errors that
name the key and its allowed values.

The defaults describe a Megatron-Core/Transformer Engine stack: the device's best fused
attention, fused element-wise kernels, attention-core selective recompute, no TP or expert
all-to-all overlap, fp32 gradient reduction, a 1.1 MoE imbalance and no node limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cost_models.ops import ATTENTION_KERNELS, ELEMENTWISE, TrainOptions
from cost_models.recompute import SELECTIVE_POLICIES

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


__all__ = ["FRAMEWORK_KEYS", "parse_pairs", "train_options"]
