"""Load device and system profiles from YAML into frozen typed objects (SI units).

Files use human units, converted here once:

=====================  ==========================  ==========================
file field             unit in the file            object field (SI)
=====================  ==========================  ==========================
peak_tflops.<dtype>    TFLOP/s (1e12, dense)       peak_flops_per_s  FLOP/s
memory_gb              GB (1e9 bytes)              memory_bytes
usable_memory_gib      GiB (2^30 bytes)            usable_memory_bytes
memory_tb_per_s        TB/s (1e12 bytes/s)         memory_bandwidth_bytes_per_s
onchip_mb              MB (1e6 bytes)              onchip_memory_bytes
gemm_efficiency_curve  gflop (1e9 FLOPs per GEMM)  EfficiencyCurve.sizes  FLOPs
kernel_launch_us       microseconds                kernel_launch_s
tdp_w                  watts                       power_w
bandwidth_gb_per_s     GB/s per device/direction   bandwidth_bytes_per_s
latency_us             microseconds                latency_s
=====================  ==========================  ==========================

``memory_gb`` is the marketed capacity figure ("80 GB", "32 GiB"); physical HBM stacks are
binary-sized, so reading the figure as 1e9 bytes under-states capacity by up to ~7%, on the
safe side for fit checks. Where the runtime publishes what one program may use (XLA:TPU
reports its HBM limit in GiB, after its own reservations), ``usable_memory_gib`` states it
and fit checks use it (:attr:`~hw_profiles.types.Device.capacity_bytes`).

A name is looked up in ``hw_profiles/devices`` or ``hw_profiles/systems``; anything that
ends in ``.yaml``/``.yml`` or contains a path separator is read as a file. A system's
``device:`` may be a device name or a path relative to the system file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args

from hw_profiles._fields import Fields, read_yaml_mapping
from hw_profiles.types import (
    TOPOLOGIES,
    Device,
    Dtype,
    EfficiencyCurve,
    ProfileError,
    System,
    Tier,
)

PROFILE_DIR = Path(__file__).resolve().parent
DEVICES_DIR = PROFILE_DIR / "devices"
SYSTEMS_DIR = PROFILE_DIR / "systems"

_TERA = 1e12
_GIGA = 1e9
_MEGA = 1e6
_GIBI = float(2**30)
_PER_MICRO = 1e6  # microseconds per second
DTYPES: tuple[str, ...] = get_args(Dtype)
DEVICE_KINDS: tuple[str, ...] = ("gpu", "npu", "tpu", "cpu")

_DEVICE_KEYS = {
    "name",
    "vendor",
    "kind",
    "peak_tflops",
    "memory_gb",
    "usable_memory_gib",
    "memory_tb_per_s",
    "onchip_mb",
    "gemm_efficiency",
    "gemm_efficiency_curve",
    "attention_efficiency",
    "attention_efficiency_fa2",
    "memory_efficiency",
    "kernel_launch_us",
    "tdp_w",
    "price_usd_per_hour",
    "notes",
    "sources",
}
_SYSTEM_KEYS = {
    "name",
    "device",
    "devices_per_node",
    "max_devices",
    "tiers",
    "price_per_device_hour_usd",
    "notes",
    "sources",
}
_TIER_KEYS = {
    "name",
    "group_size",
    "bandwidth_gb_per_s",
    "latency_us",
    "efficiency",
    "topology",
    "torus_dims",
    "scale_up",
    "notes",
    "sources",
}
_TORUS_RANK = {"torus2d": 2, "torus3d": 3}


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def list_devices() -> list[str]:
    """Names of the shipped device profiles."""
    return _names(DEVICES_DIR)


def list_systems() -> list[str]:
    """Names of the shipped system profiles."""
    return _names(SYSTEMS_DIR)


def _is_path(name_or_path: str) -> bool:
    return (
        name_or_path.endswith((".yaml", ".yml"))
        or os.sep in name_or_path
        or (os.altsep is not None and os.altsep in name_or_path)
    )


def _resolve(name_or_path: str, folder: Path, what: str) -> Path:
    if _is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ProfileError(f"{name_or_path}: no such {what} profile file")
        return path
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(_names(folder))
        raise ProfileError(f"unknown {what} {name_or_path!r}; known: {known} (or a .yaml path)")
    return path


def _curve(fields: Fields) -> EfficiencyCurve | None:
    if not fields.has("gemm_efficiency_curve"):
        return None
    raw = fields.raw("gemm_efficiency_curve")
    if not isinstance(raw, dict):
        raise fields.error("gemm_efficiency_curve", "expected a mapping with gflop and fraction")
    where = f"{fields.where}: gemm_efficiency_curve"
    curve = Fields(raw, where=where, allowed={"gflop", "fraction"})
    gflop = curve.number_list("gflop", parent="gemm_efficiency_curve")
    fractions = curve.number_list("fraction", parent="gemm_efficiency_curve")
    fields.numeric.append("gemm_efficiency_curve")
    try:
        return EfficiencyCurve(sizes=tuple(g * _GIGA for g in gflop), fractions=fractions)
    except ProfileError as exc:
        raise ProfileError(f"{fields.where}: gemm_{exc}") from None


def device_from_mapping(data: dict[str, Any], *, where: str) -> Device:
    """A :class:`Device` from a parsed device file; ``where`` names the file in errors."""
    f = Fields(data, where=where, allowed=_DEVICE_KEYS)
    peaks = f.number_map("peak_tflops", DTYPES)
    device = Device(
        name=f.text("name"),
        vendor=f.text("vendor"),
        kind=f.choice("kind", DEVICE_KINDS),  # type: ignore[arg-type]
        peak_flops_per_s={k: v * _TERA for k, v in peaks.items()},
        memory_bytes=f.number("memory_gb") * _GIGA,
        memory_bandwidth_bytes_per_s=f.number("memory_tb_per_s") * _TERA,
        onchip_memory_bytes=f.number("onchip_mb", positive=False) * _MEGA,
        gemm_efficiency=f.fraction("gemm_efficiency"),
        attention_efficiency=f.fraction("attention_efficiency"),
        attention_efficiency_fa2=(
            f.fraction("attention_efficiency_fa2") if f.has("attention_efficiency_fa2") else None
        ),
        memory_efficiency=f.fraction("memory_efficiency"),
        kernel_launch_s=f.number("kernel_launch_us", positive=False) / _PER_MICRO,
        power_w=f.number("tdp_w", positive=False),  # 0 = unknown (profiled CPUs)
        gemm_efficiency_curve=_curve(f),
        price_per_hour_usd=(
            f.number("price_usd_per_hour") if f.has("price_usd_per_hour") else None
        ),
        usable_memory_bytes=(
            f.number("usable_memory_gib") * _GIBI if f.has("usable_memory_gib") else None
        ),
        sources=f.sources(),
    )
    return device


def load_device(name_or_path: str) -> Device:
    """A device profile by name (``h100-sxm``) or YAML path, in SI units."""
    path = _resolve(name_or_path, DEVICES_DIR, "device")
    return device_from_mapping(read_yaml_mapping(path), where=str(path))


def _tier(raw: Any, *, where: str) -> Tier:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping of tier fields")
    f = Fields(raw, where=where, allowed=_TIER_KEYS)
    topology = f.choice("topology", TOPOLOGIES)
    group_size = f.integer("group_size")
    dims: tuple[int, ...] = ()
    if topology in _TORUS_RANK:
        raw_dims = f.raw("torus_dims")
        rank = _TORUS_RANK[topology]
        if (
            not isinstance(raw_dims, list)
            or len(raw_dims) != rank
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in raw_dims)
        ):
            raise f.error("torus_dims", f"{topology} needs {rank} positive integers")
        dims = tuple(raw_dims)
        product = 1
        for d in dims:
            product *= d
        if product != group_size:
            raise f.error(
                "torus_dims", f"{'x'.join(map(str, dims))} = {product} != group_size {group_size}"
            )
        f.numeric.append("torus_dims")
    elif f.has("torus_dims"):
        raise f.error("torus_dims", f"only for torus2d/torus3d, not {topology}")
    tier = Tier(
        name=f.text("name"),
        group_size=group_size,
        bandwidth_bytes_per_s=f.number("bandwidth_gb_per_s") * _GIGA,
        latency_s=f.number("latency_us", positive=False) / _PER_MICRO,
        efficiency=f.fraction("efficiency"),
        topology=topology,  # type: ignore[arg-type]
        torus_dims=dims,
        scale_up=f.flag("scale_up"),
        sources=f.sources(),
    )
    return tier


def _check_tiers(tiers: tuple[Tier, ...], *, where: str) -> None:
    if not tiers:
        raise ProfileError(f"{where}: tiers: at least one tier is required")
    for i in range(1, len(tiers)):
        inner, outer = tiers[i - 1], tiers[i]
        if outer.group_size <= inner.group_size or outer.group_size % inner.group_size:
            raise ProfileError(
                f"{where}: tiers[{i}].group_size: {outer.group_size} must be a larger multiple "
                f"of tiers[{i - 1}].group_size {inner.group_size} (innermost first)"
            )
        if outer.scale_up and i > 1 and not inner.scale_up:
            raise ProfileError(
                f"{where}: tiers[{i}].scale_up: true after tiers[{i - 1}] ({inner.name}), "
                "which is not; scale-up tiers come first, innermost first"
            )


def _system_device(f: Fields, path: Path | None) -> Device:
    ref = f.text("device")
    if path is not None and _is_path(ref):
        ref_path = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        ref = str(ref_path)
    try:
        return load_device(ref)
    except ProfileError as exc:
        raise f.error("device", str(exc)) from None


def system_from_mapping(data: dict[str, Any], *, where: str, path: Path | None = None) -> System:
    """A :class:`System` (``num_devices`` = one node) from a parsed system file."""
    f = Fields(data, where=where, allowed=_SYSTEM_KEYS)
    device = _system_device(f, path)
    raw_tiers = f.raw("tiers")
    if not isinstance(raw_tiers, list):
        raise f.error("tiers", "expected a list of tiers, innermost first")
    tiers = tuple(_tier(t, where=f"{where}: tiers[{i}]") for i, t in enumerate(raw_tiers))
    _check_tiers(tiers, where=where)
    per_node = f.integer("devices_per_node")
    max_devices = f.integer("max_devices")
    if max_devices > tiers[-1].group_size:
        raise f.error(
            "max_devices",
            f"{max_devices} exceeds the outermost tier's group_size {tiers[-1].group_size}",
        )
    if max_devices % per_node:
        raise f.error("devices_per_node", f"{per_node} does not divide max_devices {max_devices}")
    price = (
        f.number("price_per_device_hour_usd")
        if f.has("price_per_device_hour_usd")
        else device.price_per_hour_usd
    )
    return System(
        name=f.text("name"),
        device=device,
        devices_per_node=per_node,
        tiers=tiers,
        num_devices=per_node,
        max_devices=max_devices,
        price_per_device_hour_usd=price,
        sources=f.sources(),
    )


def _refuse_device_as_system(name: str) -> None:
    """A device name where a system is wanted: say so, and which systems use that device."""
    if name not in list_devices():
        return
    using = [
        s
        for s in list_systems()
        if read_yaml_mapping(SYSTEMS_DIR / f"{s}.yaml").get("device") == name
    ]
    hint = f"systems with it: {', '.join(using)}" if using else "no built-in system uses it"
    raise ProfileError(f"system: {name!r} is a device profile, not a system; {hint}")


def _is_system_file(data: dict[str, Any]) -> bool:
    """A system file names its tiers or its device; a device file (``nas hw profile``) neither."""
    return "tiers" in data or "device" in data


def one_device_system(device: Device) -> System:
    """A system of one ``device`` and no network: a profiled machine (``nas hw profile``) or a
    device without a system file. Its placeholder tier is never priced (a group of one)."""
    tier = Tier(name="none", group_size=1, bandwidth_bytes_per_s=1.0, latency_s=0.0,
                efficiency=1.0, topology="switch")  # fmt: skip
    return System(name=device.name, device=device, devices_per_node=1, tiers=(tier,),
                  num_devices=1, max_devices=1)  # fmt: skip


def load_system(name_or_path: str, num_devices: int | None = None) -> System:
    """A system profile by name (``dgx-h100``) or YAML path, scaled to ``num_devices``
    (default: one node). More devices than the topology allows is a :class:`ProfileError`.
    A device file (no ``tiers:``, as ``nas hw profile`` writes) stands for one device."""
    if not _is_path(name_or_path) and name_or_path not in list_systems():
        _refuse_device_as_system(name_or_path)
    path = _resolve(name_or_path, SYSTEMS_DIR, "system")
    data = read_yaml_mapping(path)
    if not _is_system_file(data):
        if num_devices not in (None, 1):
            raise ProfileError(
                f"{path.name}: a device profile stands for one device, not {num_devices}; "
                "for more, write a system file that names it (docs/hardware.md)"
            )
        return one_device_system(device_from_mapping(data, where=str(path)))
    system = system_from_mapping(data, where=str(path), path=path)
    if num_devices is None:
        return system
    try:
        return system.scaled(num_devices)
    except ProfileError as exc:
        raise ProfileError(f"{path.name}: {exc}") from None


def load_profile(name_or_path: str) -> System | Device:
    """A system or a device by name or file (a file with ``tiers:`` is a system)."""
    if _is_path(name_or_path):
        path = _resolve(name_or_path, SYSTEMS_DIR, "system or device")
        data = read_yaml_mapping(path)
        if _is_system_file(data):
            return system_from_mapping(data, where=str(path), path=path)
        return device_from_mapping(data, where=str(path))
    if name_or_path in list_systems():
        return load_system(name_or_path)
    if name_or_path in list_devices():
        return load_device(name_or_path)
    raise ProfileError(
        f"unknown system or device {name_or_path!r}; systems: {', '.join(list_systems())}; "
        f"devices: {', '.join(list_devices())} (or a .yaml path)"
    )
