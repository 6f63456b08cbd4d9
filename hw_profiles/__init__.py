"""Hardware profiles (data), their loader and a local profiler.

Public API::

    load_system(name_or_path, num_devices=None) -> System
    load_device(name_or_path) -> Device
    load_profile(name_or_path) -> System | Device   (a system or a device, by name or file)
    list_systems() -> list[str]; list_devices() -> list[str]
"""

from hw_profiles.loader import (
    list_devices,
    list_systems,
    load_device,
    load_profile,
    load_system,
)
from hw_profiles.types import Device, EfficiencyCurve, ProfileError, System, Tier

__all__ = [
    "Device",
    "EfficiencyCurve",
    "ProfileError",
    "System",
    "Tier",
    "list_devices",
    "list_systems",
    "load_device",
    "load_profile",
    "load_system",
]
