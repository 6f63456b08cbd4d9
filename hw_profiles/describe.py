"""Human-readable rows (value with unit, source) for devices and systems, for ``nas hw show``.

Values are converted back from SI to the units the files use; each row carries the source
text of the file field it came from.
"""

from __future__ import annotations

from typing import Any

from hw_profiles.types import Device, System, Tier

Row = tuple[str, str, str]  # (field, value with unit, source)


def _source(sources: Any, key: str) -> str:
    text = sources.get(key)
    if text is None:  # a per-dtype entry such as peak_tflops.fp8 under peak_tflops
        parent = key.split(".")[0]
        text = sources.get(parent, "")
    return str(text)


def device_rows(device: Device) -> list[Row]:
    """Every number of ``device`` with its unit and source."""
    s = device.sources
    rows: list[Row] = [
        ("name", device.name, ""),
        ("vendor / kind", f"{device.vendor} / {device.kind}", ""),
    ]
    for dtype, flops in device.peak_flops_per_s.items():
        rows.append(
            (f"peak {dtype}", f"{flops / 1e12:,.4g} TFLOP/s", _source(s, f"peak_tflops.{dtype}"))
        )
    rows += [
        ("memory", f"{device.memory_bytes / 1e9:,.0f} GB", _source(s, "memory_gb")),
        *_usable_row(device),
        (
            "memory bandwidth",
            f"{device.memory_bandwidth_bytes_per_s / 1e12:,.4g} TB/s",
            _source(s, "memory_tb_per_s"),
        ),
        ("on-chip memory", f"{device.onchip_memory_bytes / 1e6:,.1f} MB", _source(s, "onchip_mb")),
        ("GEMM efficiency", f"{device.gemm_efficiency:.2f}", _source(s, "gemm_efficiency")),
    ]
    curve = device.gemm_efficiency_curve
    if curve is not None:
        points = ", ".join(
            f"{size / 1e9:.3g} GFLOP: {frac:.2f}"
            for size, frac in zip(curve.sizes, curve.fractions, strict=True)
        )
        rows.append(("GEMM efficiency curve", points, _source(s, "gemm_efficiency_curve")))
    rows += [
        (
            "attention efficiency",
            f"{device.attention_efficiency:.2f}",
            _source(s, "attention_efficiency"),
        ),
    ]
    if device.attention_efficiency_fa2 is not None:
        rows.append(
            (
                "attention efficiency, FlashAttention-2",
                f"{device.attention_efficiency_fa2:.3f}",
                _source(s, "attention_efficiency_fa2"),
            )
        )
    rows += [
        ("memory efficiency", f"{device.memory_efficiency:.2f}", _source(s, "memory_efficiency")),
        ("kernel launch", f"{device.kernel_launch_s * 1e6:.1f} us", _source(s, "kernel_launch_us")),
        ("power (TDP)", f"{device.power_w:,.0f} W", _source(s, "tdp_w")),
    ]
    if device.price_per_hour_usd is not None:
        rows.append(
            ("price", f"{device.price_per_hour_usd:.2f} USD/h", _source(s, "price_usd_per_hour"))
        )
    return rows


def tier_summary(tier: Tier) -> str:
    """One-line tier description: ``nvlink4 x8 switch 450 GB/s``."""
    dims = f" {'x'.join(map(str, tier.torus_dims))}" if tier.torus_dims else ""
    return (
        f"{tier.name} x{tier.group_size} {tier.topology}{dims} "
        f"{tier.bandwidth_bytes_per_s / 1e9:g} GB/s{' scale-up' if tier.scale_up else ''}"
    )


def system_rows(system: System) -> list[Row]:
    """Every number of ``system`` (nodes, tiers, then its device) with units and sources."""
    s = system.sources
    rows: list[Row] = [
        ("name", system.name, ""),
        ("device", system.device.name, ""),
        ("devices per node", str(system.devices_per_node), _source(s, "devices_per_node")),
        ("max devices", f"{system.max_devices:,}", _source(s, "max_devices")),
        ("devices in use", f"{system.num_devices:,}", "default: one node, or --num-devices"),
    ]
    if system.price_per_device_hour_usd is not None:
        rows.append(
            (
                "price per device",
                f"{system.price_per_device_hour_usd:.2f} USD/h",
                _source(s, "price_per_device_hour_usd") or "from the device profile",
            )
        )
    for i, tier in enumerate(system.tiers):
        rows.extend(_tier_rows(i, tier))
    rows.extend((f"device {f}", v, src) for f, v, src in device_rows(system.device)[2:])
    return rows


def _tier_rows(index: int, tier: Tier) -> list[Row]:
    src = tier.sources
    prefix = f"tier {index} {tier.name}"
    rows: list[Row] = [
        (f"{prefix} group size", f"{tier.group_size:,}", src.get("group_size", "")),
        (f"{prefix} topology", tier.topology, ""),
    ]
    if tier.scale_up:
        rows.append((f"{prefix} scale-up", "yes: part of the scale-up fabric", ""))
    if tier.torus_dims:
        dims = "x".join(map(str, tier.torus_dims))
        rows.append((f"{prefix} torus dims", dims, src.get("torus_dims", "")))
    rows += [
        (
            f"{prefix} bandwidth",
            f"{tier.bandwidth_bytes_per_s / 1e9:g} GB/s per device per direction",
            src.get("bandwidth_gb_per_s", ""),
        ),
        (f"{prefix} latency", f"{tier.latency_s * 1e6:.2f} us", src.get("latency_us", "")),
        (f"{prefix} efficiency", f"{tier.efficiency:.2f}", src.get("efficiency", "")),
    ]
    return rows


def _usable_row(device: Device) -> list[Row]:
    """The runtime's usable memory, where the profile states it (fit checks use it)."""
    if device.usable_memory_bytes is None:
        return []
    gib = device.usable_memory_bytes / 2**30
    return [("usable memory", f"{gib:,.2f} GiB", _source(device.sources, "usable_memory_gib"))]
