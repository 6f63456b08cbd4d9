"""Bad profiles: one clear line naming the file and the field, exit code 2 through the CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hw_profiles import ProfileError, load_device, load_system
from hw_profiles.loader import DEVICES_DIR, SYSTEMS_DIR

if TYPE_CHECKING:  # the fixture lives in tests/conftest.py
    from conftest import NasRun


def _system() -> dict[str, Any]:
    return yaml.safe_load((SYSTEMS_DIR / "dgx-h100.yaml").read_text())


def _device() -> dict[str, Any]:
    return yaml.safe_load((DEVICES_DIR / "h100-sxm.yaml").read_text())


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    keys = path.split(".")
    node: Any = data
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return data


_DELETE = object()

SYSTEM_CASES = [
    # (mutation path, value, text the one-line error must contain)
    ("devices_per_node", _DELETE, "devices_per_node: missing"),
    (
        "tiers.0.bandwidth_gb_per_s",
        -450,
        "tiers[0]: bandwidth_gb_per_s: must be a finite number > 0",
    ),
    ("tiers.1.latency_us", -4.0, "tiers[1]: latency_us: must be a finite number >= 0"),
    (
        "tiers.0.topology",
        "hypercube",
        "tiers[0]: topology: unknown value 'hypercube'; allowed: switch",
    ),
    ("tiers.0.bandwith_gb_per_s", 450, "tiers[0]: unknown key 'bandwith_gb_per_s'"),
    ("max_device", 8, "unknown key 'max_device'"),
    ("tiers.1.group_size", 8, "tiers[1].group_size: 8 must be a larger multiple of tiers[0]"),
    ("tiers.1.group_size", 65540, "tiers[1].group_size: 65540 must be a larger multiple"),
    ("device", "h100-sxx", "device: unknown device 'h100-sxx'"),
    ("tiers.0.efficiency", 1.2, "tiers[0]: efficiency: a fraction must lie in (0, 1]"),
    ("max_devices", 70000, "max_devices: 70000 exceeds the outermost tier's group_size 65536"),
    (
        "tiers.0.sources.latency_us",
        _DELETE,
        "tiers[0]: sources: no entry for numeric field 'latency_us'",
    ),
    ("devices_per_node", 7, "devices_per_node: 7 does not divide max_devices"),
    ("tiers.0.group_size", "eight", "tiers[0]: group_size: expected a positive integer"),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), SYSTEM_CASES, ids=[c[0] + "=" + str(c[1]) for c in SYSTEM_CASES]
)
def test_bad_system_via_cli(
    nas_cli: NasRun,
    path: str,
    value: Any,
    expected: str,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad-system.yaml"
    bad.write_text(yaml.safe_dump(_set(_system(), path, value)))
    code, out, err = nas_cli(["hw", "show", str(bad)])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {bad}"), lines[0]  # names the file
    assert expected in lines[0]
    assert "Traceback" not in out + err


def _torus(tmp_path: Path, dims: Any) -> Path:
    data = yaml.safe_load((SYSTEMS_DIR / "tpu-v4-pod.yaml").read_text())
    data["tiers"][0]["torus_dims"] = dims
    data["device"] = str(DEVICES_DIR / "tpu-v4.yaml")  # a path reference works too
    path = tmp_path / "torus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_torus_dims_must_multiply_to_group_size(tmp_path: Path) -> None:
    assert load_system(str(_torus(tmp_path, [16, 16, 16]))).tiers[0].torus_dims == (16, 16, 16)
    with pytest.raises(ProfileError, match=r"torus_dims: 16x16x8 = 2048 != group_size 4096"):
        load_system(str(_torus(tmp_path, [16, 16, 8])))
    with pytest.raises(ProfileError, match="torus3d needs 3 positive integers"):
        load_system(str(_torus(tmp_path, [64, 64])))


DEVICE_CASES = [
    ("memory_gb", _DELETE, "memory_gb: missing"),
    ("memory_tb_per_s", -3.35, "memory_tb_per_s: must be a finite number > 0"),
    ("peak_tflops.bf17", 1.0, "peak_tflops.bf17: unknown key; allowed: fp32"),
    ("kind", "fpga", "kind: unknown value 'fpga'"),
    (
        "gemm_efficiency_curve.gflop",
        [1.0, 0.5, 3, 4, 5, 6, 7],
        "sizes must be positive and increasing",
    ),
    ("sources.memory_gb", _DELETE, "sources: no entry for numeric field 'memory_gb'"),
    ("sources.memroy_gb", "typo", "sources.memroy_gb: names no field"),
    ("tdp_w", "700 W", "tdp_w: expected a number"),
    ("usable_memory_gib", -1.0, "usable_memory_gib: must be a finite number > 0"),
    ("memory_tb_per_s", 1e-300, "memory_tb_per_s: must lie in [1e-06, 1e+07]"),
    ("kernel_launch_us", 1e300, "kernel_launch_us: must lie in [1e-06, 1e+07]"),
    (
        "sources.usable_memory_gib",
        _DELETE,
        "sources: no entry for numeric field 'usable_memory_gib'",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), DEVICE_CASES, ids=[c[0] for c in DEVICE_CASES]
)
def test_bad_device_via_cli(
    nas_cli: NasRun,
    path: str,
    value: Any,
    expected: str,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad-device.yaml"
    bad.write_text(yaml.safe_dump(_set(_device(), path, value)))
    code, _, err = nas_cli(["hw", "show", str(bad)])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert str(bad) in lines[0] and expected in lines[0], lines[0]


def test_invalid_yaml_and_missing_file(
    nas_cli: NasRun,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    code, _, err = nas_cli(["hw", "show", str(bad)])
    assert code == 2 and "invalid YAML" in err and str(bad) in err
    code, _, err = nas_cli(["hw", "show", str(tmp_path / "absent.yaml")])
    assert code == 2 and "no such" in err
    with pytest.raises(ProfileError, match="unknown device 'nope'; known: a100-40gb"):
        load_device("nope")


def test_scaling_beyond_max_via_cli(nas_cli: NasRun) -> None:
    code, _, err = nas_cli(["hw", "show", "h100-pcie-8", "--num-devices", "16"])
    assert code == 2
    assert err.strip() == "error: num_devices: h100-pcie-8 allows at most 8 devices, got 16"
