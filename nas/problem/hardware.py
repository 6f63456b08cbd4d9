"""Hardware as a search dimension (co-design): a choice among systems and scale factors on a
profile's peak FLOP/s, memory bandwidth, memory size and per-tier link bandwidth.

Scaled systems are built with ``dataclasses.replace`` on the frozen profile types. The cost
of a scaled system is a *relative cost index* ``prod(scale_k ** exponent_k)`` (exponent 1 by
default: cost linear in every knob). This is a modelling assumption, not a published figure;
experiments can set their own exponents under ``hardware.cost_exponents``. Price per hour and
power (``price_per_hour_usd``, ``power_w``) are the profiles' figures for the base system;
the index (``hw_cost_index``) is the separate objective for scaled hardware.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hw_profiles.types import System
from nas.experiment import ExperimentError, Hardware, KnobRange

__all__ = ["HardwarePoint", "check_knobs", "hardware_grid", "scale_system", "suggest_hardware"]

_SCALAR_KNOBS: tuple[tuple[str, str], ...] = (
    ("peak_flops_scale", "peak_flops"),
    ("memory_bandwidth_scale", "memory_bandwidth"),
    ("memory_size_scale", "memory_size"),
)


@dataclass(frozen=True, kw_only=True)
class HardwarePoint:
    """One hardware candidate: the scaled system, the knob values, the cost index."""

    system: System
    base_name: str
    scales: Mapping[str, float]  # knob name (hw_<knob>) -> scale factor
    cost_index: float

    def metrics(self) -> dict[str, Any]:
        """Trial-record entries describing the hardware (prices and power over all devices)."""
        dev = self.system.device
        n = self.system.num_devices
        price = self.system.price_per_device_hour_usd or dev.price_per_hour_usd
        out: dict[str, Any] = {
            "system": self.base_name,
            "num_devices": n,
            "device_memory_bytes": dev.capacity_bytes,
            "device_memory_bandwidth_bytes_per_s": dev.memory_bandwidth_bytes_per_s,
            "hw_cost_index": self.cost_index,
            "power_w": dev.power_w * n,
            "price_per_device_hour_usd": math.nan if price is None else price,
            "price_per_hour_usd": math.nan if price is None else price * n,
        }
        out.update(self.scales)
        return out


def scale_system(
    system: System,
    *,
    peak_flops: float = 1.0,
    memory_bandwidth: float = 1.0,
    memory_size: float = 1.0,
    link_bandwidth: Mapping[str, float] | None = None,
) -> System:
    """``system`` with its device's peaks, memory bandwidth and size and the named tiers'
    bandwidth multiplied by the given factors."""
    dev = system.device
    device = replace(
        dev,
        peak_flops_per_s={k: v * peak_flops for k, v in dev.peak_flops_per_s.items()},
        memory_bandwidth_bytes_per_s=dev.memory_bandwidth_bytes_per_s * memory_bandwidth,
        memory_bytes=dev.memory_bytes * memory_size,
        usable_memory_bytes=(
            None if dev.usable_memory_bytes is None else dev.usable_memory_bytes * memory_size
        ),
    )
    links = dict(link_bandwidth or {})  # tiers the system lacks are left alone
    tiers = tuple(
        replace(t, bandwidth_bytes_per_s=t.bandwidth_bytes_per_s * links.get(t.name, 1.0))
        for t in system.tiers
    )
    return replace(system, device=device, tiers=tiers)


def _knobs(hw: Hardware) -> dict[str, Any]:
    """Knob name -> spec (list of choices or a range), links as ``link_<tier>``."""
    out: dict[str, Any] = {}
    if hw.knobs is None:
        return out
    for attr, short in _SCALAR_KNOBS:
        spec = getattr(hw.knobs, attr)
        if spec is not None:
            out[short] = spec
    for tier, spec in (hw.knobs.link_bandwidth_scale or {}).items():
        out[f"link_{tier}"] = spec
    return out


def check_knobs(hw: Hardware, systems: Mapping[str, System]) -> None:
    """Every link knob must name a tier of at least one of the systems."""
    tiers = sorted({t.name for s in systems.values() for t in s.tiers})
    for tier in (hw.knobs.link_bandwidth_scale or {}) if hw.knobs else {}:
        if tier not in tiers:
            raise ExperimentError(
                f"hardware.knobs.link_bandwidth_scale.{tier}: no such tier in "
                f"{', '.join(systems)}; tiers: {', '.join(tiers)}"
            )


def _point(
    hw: Hardware, systems: Mapping[str, System], name: str, scales: Mapping[str, float]
) -> HardwarePoint:
    tier_names = {t.name for t in systems[name].tiers}
    # a knob on a tier this system lacks does not apply to it (scale 1, no cost)
    scales = {
        k: (v if not k.startswith("link_") or k[5:] in tier_names else 1.0)
        for k, v in scales.items()
    }
    links = {k[len("link_") :]: v for k, v in scales.items() if k.startswith("link_")}
    system = scale_system(
        systems[name],
        peak_flops=scales.get("peak_flops", 1.0),
        memory_bandwidth=scales.get("memory_bandwidth", 1.0),
        memory_size=scales.get("memory_size", 1.0),
        link_bandwidth=links,
    )
    index = 1.0
    for knob, scale in scales.items():
        family = "link_bandwidth" if knob.startswith("link_") else knob
        index *= scale ** hw.cost_exponents.get(family, 1.0)  # type: ignore[call-overload]
    return HardwarePoint(
        system=system,
        base_name=name,
        scales={f"hw_{k}_scale": v for k, v in scales.items()},
        cost_index=index,
    )


def suggest_hardware(trial: Any, hw: Hardware, systems: Mapping[str, System]) -> HardwarePoint:
    """Define-by-run: the system (when several) then each knob."""
    names = list(hw.systems)
    name = names[0] if len(names) == 1 else str(trial.suggest_categorical("system", names))
    scales: dict[str, float] = {}
    for knob, spec in _knobs(hw).items():
        param = f"hw_{knob}_scale"
        if isinstance(spec, KnobRange):
            scales[knob] = float(trial.suggest_float(param, spec.low, spec.high, log=spec.log))
        else:
            scales[knob] = float(trial.suggest_categorical(param, list(spec)))
    return _point(hw, systems, name, scales)


def hardware_grid(hw: Hardware, systems: Mapping[str, System]) -> list[HardwarePoint]:
    """Every hardware candidate (systems x knob choices), for the exhaustive backend."""
    knobs = _knobs(hw)
    for knob, spec in knobs.items():
        if isinstance(spec, KnobRange):
            raise ExperimentError(f"hardware.knobs: {knob} is a range; exhaustive needs choices")
    keys: Sequence[str] = list(knobs)
    out: list[HardwarePoint] = []
    seen: set[tuple[str, tuple[tuple[str, float], ...]]] = set()
    for name in hw.systems:
        for combo in itertools.product(*(knobs[k] for k in keys)):
            point = _point(hw, systems, name, dict(zip(keys, map(float, combo), strict=True)))
            key = (name, tuple(sorted(point.scales.items())))
            if key not in seen:  # link knobs on a tier this system lacks collapse to 1
                seen.add(key)
                out.append(point)
    return out
