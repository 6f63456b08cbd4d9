"""Typed, frozen hardware profiles. SI units inside: bytes, FLOP/s, bytes/s, seconds, watts.

Files store human units (TFLOP/s, GB, TB/s, GB/s, us); the loader converts once. Every
number in a file carries its source in the file's ``sources:`` mapping.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

Topology = Literal["switch", "full_mesh", "ring", "torus2d", "torus3d"]
TOPOLOGIES: tuple[str, ...] = ("switch", "full_mesh", "ring", "torus2d", "torus3d")
Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4"]


class ProfileError(ValueError):
    """An invalid hardware profile or request; the message names the file and field."""


@dataclass(frozen=True, kw_only=True)
class EfficiencyCurve:
    """Achieved fraction of peak as a function of work size, interpolated in log(size).

    ``sizes`` are FLOPs per GEMM call (or bytes per copy for memory curves), increasing;
    ``fractions`` are achieved/peak at those sizes. Outside the range the end values hold.
    """

    sizes: tuple[float, ...]
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) == 0 or len(self.sizes) != len(self.fractions):
            raise ProfileError(
                f"efficiency curve: sizes and fractions need the same non-zero length, "
                f"got {len(self.sizes)} and {len(self.fractions)}"
            )
        if any(s <= 0 for s in self.sizes) or any(
            b <= a for a, b in itertools.pairwise(self.sizes)
        ):
            raise ProfileError("efficiency curve: sizes must be positive and increasing")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ProfileError("efficiency curve: fractions must lie in (0, 1]")

    @overload
    def at(self, size: float) -> float: ...
    @overload
    def at(self, size: NDArray[np.float64]) -> NDArray[np.float64]: ...
    def at(self, size: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
        """Fraction of peak at ``size`` (scalar or array), linear in log(size), clamped."""
        log_size = np.log(np.maximum(np.asarray(size, dtype=np.float64), 1.0))
        out = np.interp(log_size, np.log(np.asarray(self.sizes)), np.asarray(self.fractions))
        if np.ndim(out) == 0:
            return float(out)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class Device:
    """One accelerator. Peaks are dense (no 2:4 sparsity)."""

    name: str
    vendor: str
    kind: Literal["gpu", "npu", "tpu", "cpu"]
    peak_flops_per_s: Mapping[str, float]  # dtype -> dense peak FLOP/s
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    onchip_memory_bytes: float  # L2 / SRAM / last-level cache; 0 = not published
    gemm_efficiency: float  # fraction of peak on large, square GEMMs
    attention_efficiency: float  # fraction of peak in fused (flash) attention
    memory_efficiency: float  # fraction of memory bandwidth achieved by streaming kernels
    kernel_launch_s: float
    power_w: float  # TDP; 0 = unknown (e.g. a profiled CPU)
    gemm_efficiency_curve: EfficiencyCurve | None = None
    # FlashAttention-2 where the best kernel is faster (Hopper: FA2 lacks wgmma/TMA);
    # None = FA2 is the device's best fused kernel (``attention_efficiency``)
    attention_efficiency_fa2: float | None = None
    price_per_hour_usd: float | None = None
    # What the runtime lets one program allocate, where a runtime's own figure is published
    # (XLA:TPU's HBM limit); None = ``memory_bytes``, the datasheet capacity
    usable_memory_bytes: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def capacity_bytes(self) -> float:
        """Memory a training or serving process may fill: the runtime's usable figure where
        the profile has one, else the datasheet capacity (fit checks compare with this)."""
        return self.memory_bytes if self.usable_memory_bytes is None else self.usable_memory_bytes

    def gemm_efficiency_at(self, flops: float) -> float:
        """Fraction of peak for one GEMM of ``flops`` FLOPs: the curve where the profile has
        one, else the large-GEMM efficiency."""
        if self.gemm_efficiency_curve is None:
            return self.gemm_efficiency
        return self.gemm_efficiency_curve.at(flops)

    def attention_efficiency_for(self, kernel: str) -> float:
        """Fraction of the bf16 peak of fused attention: ``flash`` is the best kernel for the
        device, ``flash2`` FlashAttention-2."""
        if kernel == "flash2" and self.attention_efficiency_fa2 is not None:
            return self.attention_efficiency_fa2
        return self.attention_efficiency

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; an error lists the dtypes the device has."""
        try:
            return self.peak_flops_per_s[dtype]
        except KeyError:
            raise ProfileError(
                f"{self.name}: dtype {dtype!r} not supported; has {', '.join(self.peak_flops_per_s)}"
            ) from None


@dataclass(frozen=True, kw_only=True)
class Tier:
    """One network tier. ``group_size`` is the number of devices that reach each other
    through this tier or an inner one (8 for an NVLink node, the whole cluster outermost)."""

    name: str  # e.g. "nvlink4", "ib-ndr"
    group_size: int
    bandwidth_bytes_per_s: float  # per device, per direction
    latency_s: float  # one-hop latency (alpha)
    efficiency: float  # achievable fraction of bandwidth for large messages
    topology: Topology
    torus_dims: tuple[int, ...] = ()  # for torus2d / torus3d: extent of each dimension
    # part of the load/store scale-up fabric (NVLink, ICI, Unified Bus) rather than a network;
    # tier 0 always is, an outer tier only when its file says so (CloudMatrix384: the
    # on-package die-to-die link, then the Unified Bus across 384 packages)
    scale_up: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)  # file field -> source

    def __post_init__(self) -> None:
        where = f"tier {self.name!r}"
        if self.group_size < 1:
            raise ProfileError(f"{where}: group_size must be >= 1, got {self.group_size}")
        if not self.bandwidth_bytes_per_s > 0 or self.latency_s < 0:
            raise ProfileError(f"{where}: bandwidth must be > 0 and latency >= 0")
        if not 0 < self.efficiency <= 1:
            raise ProfileError(f"{where}: efficiency must lie in (0, 1], got {self.efficiency}")
        if self.topology not in TOPOLOGIES:
            raise ProfileError(
                f"{where}: unknown topology {self.topology!r}; allowed: {', '.join(TOPOLOGIES)}"
            )
        if self.torus_dims and math.prod(self.torus_dims) != self.group_size:
            raise ProfileError(f"{where}: torus_dims {self.torus_dims} != group_size")


@dataclass(frozen=True, kw_only=True)
class System:
    """A cluster of one device type: nodes and network tiers, innermost first."""

    name: str
    device: Device
    devices_per_node: int
    tiers: tuple[Tier, ...]
    num_devices: int  # devices in use for this estimate
    max_devices: int  # the most the topology allows
    price_per_device_hour_usd: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ProfileError(f"{self.name}: tiers: at least one tier is required")
        for i, (inner, outer) in enumerate(itertools.pairwise(self.tiers)):
            if outer.scale_up and i > 0 and not inner.scale_up:
                raise ProfileError(
                    f"{self.name}: tier {outer.name!r} is scale_up but {inner.name!r} inside it "
                    "is not; scale-up tiers come first"
                )
            if outer.group_size <= inner.group_size or outer.group_size % inner.group_size:
                raise ProfileError(
                    f"{self.name}: tier {outer.name!r} group_size {outer.group_size} must be a "
                    f"larger multiple of {inner.name!r} group_size {inner.group_size}"
                )
        if self.devices_per_node < 1 or not 1 <= self.num_devices <= self.max_devices:
            raise ProfileError(
                f"{self.name}: need devices_per_node >= 1 and 1 <= num_devices <= max_devices"
            )

    def scaled(self, num_devices: int) -> System:
        """The same system with ``num_devices`` devices; more than the topology allows is
        an error."""
        if num_devices <= 0:
            raise ProfileError(f"num_devices: must be positive, got {num_devices}")
        if num_devices > self.max_devices:
            raise ProfileError(
                f"num_devices: {self.name} allows at most {self.max_devices} devices, "
                f"got {num_devices}"
            )
        return replace(self, num_devices=num_devices)

    @property
    def scale_up_devices(self) -> int:
        """Devices sharing the scale-up fabric (tier 0 and any ``scale_up`` tiers after it):
        8 on a DGX, 72 on an NVL72, a whole torus on a TPU pod, 768 dies on CloudMatrix384.
        ``devices_per_node`` is the physical host (4 on an NVL72 tray)."""
        size = self.tiers[0].group_size
        for tier in self.tiers[1:]:
            if not tier.scale_up:
                break
            size = tier.group_size
        return size

    def tier_for_span(self, span_devices: int) -> Tier:
        """The innermost tier whose group holds ``span_devices`` consecutive devices."""
        for tier in self.tiers:
            if span_devices <= tier.group_size:
                return tier
        return self.tiers[-1]
