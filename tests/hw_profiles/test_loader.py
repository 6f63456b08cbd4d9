"""Loader: every shipped file loads, units convert to SI, every number has a source, and the
shipped figures agree with the published reference table (accelerators.csv)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from hw_profiles import (
    Device,
    ProfileError,
    System,
    list_devices,
    list_systems,
    load_device,
    load_system,
)
from hw_profiles.loader import DEVICES_DIR, SYSTEMS_DIR, load_profile

# A copy of the project reference table of accelerator specs (vendor datasheets R1..R44, each
# row names its refs); kept in the repository so the check runs on any clone.
REFERENCE = Path(__file__).parent / "data"
REQUIRED_DEVICES = (
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h800",
    "h200",
    "h20",
    "b200",
    "gb200",
    "l40s",
    "mi250x",
    "mi300x",
    "mi325x",
    "ascend-910b",
    "ascend-910c",
    "ascend-910c-die",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "gaudi2",
    "gaudi3",
)
REQUIRED_SYSTEMS = (
    "dgx-a100",
    "dgx-a100-40gb",
    "dgx-h100",
    "dgx-h200",
    "hgx-h800",
    "hgx-h20",
    "dgx-b200",
    "gb200-nvl72",
    "mi300x-oam8",
    "atlas-800t-a2",
    "cloudmatrix-384",
    "tpu-v4-pod",
    "tpu-v5e-pod",
    "tpu-v5p-pod",
    "gaudi3-hls",
    "h100-pcie-8",
)


def test_required_profiles_ship() -> None:
    assert set(REQUIRED_DEVICES) <= set(list_devices())
    assert set(REQUIRED_SYSTEMS) <= set(list_systems())


@pytest.mark.parametrize("name", list_devices())
def test_every_device_loads(name: str) -> None:
    device = load_device(name)
    assert isinstance(device, Device) and device.name == name
    assert 0 < device.gemm_efficiency <= 1 and 0 < device.memory_efficiency <= 1
    assert device.memory_bytes > 1e9 and device.memory_bandwidth_bytes_per_s > 1e11
    # a dense bf16 (or fp16) peak exists on every shipped accelerator, in FLOP/s not TFLOP/s
    assert device.peak("bf16") > 1e14
    assert load_device(str(DEVICES_DIR / f"{name}.yaml")) == device  # path == name


@pytest.mark.parametrize("name", list_systems())
def test_every_system_loads(name: str) -> None:
    system = load_system(name)
    assert isinstance(system, System) and system.name == name
    assert system.num_devices == system.devices_per_node
    sizes = [t.group_size for t in system.tiers]
    assert sizes == sorted(sizes) and system.max_devices <= sizes[-1]
    assert all(b % a == 0 for a, b in itertools.pairwise(sizes))
    assert load_system(str(SYSTEMS_DIR / f"{name}.yaml")) == system
    assert load_profile(name) == system


def test_si_conversions_h100() -> None:
    """NVIDIA H100 datasheet (SXM5): 989.4 dense bf16 TFLOP/s, 80 GB, 3.35 TB/s, 50 MB L2."""
    h100 = load_device("h100-sxm")
    assert h100.peak("bf16") == pytest.approx(989.4e12, rel=1e-12)
    assert h100.peak("fp8") == pytest.approx(1978.9e12, rel=1e-12)
    assert h100.memory_bytes == pytest.approx(80e9, rel=1e-12)
    assert h100.memory_bandwidth_bytes_per_s == pytest.approx(3.35e12, rel=1e-12)
    assert h100.onchip_memory_bytes == pytest.approx(50e6, rel=1e-12)
    assert h100.kernel_launch_s == pytest.approx(4e-6, rel=1e-9)
    assert h100.gemm_efficiency == 0.78  # ~800 of 989.4 TFLOP/s measured (SOURCES.md table)
    with pytest.raises(ProfileError, match="int4"):
        h100.peak("int4")


def test_si_conversions_dgx_h100_tiers() -> None:
    """NVLink4 450 GB/s per direction; one 400 Gb/s NDR NIC per GPU = 50 GB/s, not 400."""
    dgx = load_system("dgx-h100")
    nvlink, ib = dgx.tiers
    assert nvlink.bandwidth_bytes_per_s == pytest.approx(450e9)
    assert nvlink.latency_s == pytest.approx(1.9e-6)
    assert ib.bandwidth_bytes_per_s == pytest.approx(50e9)
    assert dgx.tier_for_span(8) is nvlink and dgx.tier_for_span(16) is ib


def test_gemm_curve_is_used_and_saturates() -> None:
    h100 = load_device("h100-sxm")
    assert h100.gemm_efficiency_at(1e6) < 0.05  # a tiny GEMM is latency-bound
    assert h100.gemm_efficiency_at(1e13) == pytest.approx(0.78)  # large end = gemm_efficiency
    assert load_device("mi300x").gemm_efficiency_at(1e6) == 0.54  # no curve: the scalar


def test_scaling() -> None:
    assert load_system("dgx-h100", 256).num_devices == 256
    assert load_system("tpu-v4-pod", 6144).num_devices == 6144  # PaLM: two pods over DCN
    with pytest.raises(ProfileError, match="at most 32768"):
        load_system("tpu-v4-pod", 32769)
    with pytest.raises(ProfileError, match="at most 8 devices"):
        load_system("h100-pcie-8", 16)
    with pytest.raises(ProfileError, match="positive"):
        load_system("dgx-h100", 0)


def _numeric_paths(data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every number in a YAML mapping, except inside ``sources`` and tiers."""
    out: list[str] = []
    for key, value in data.items():
        if key in ("sources", "tiers"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out.append(path)
        elif isinstance(value, dict):
            out.extend(_numeric_paths(value, f"{path}."))
        elif isinstance(value, list) and any(isinstance(v, (int, float)) for v in value):
            out.append(path)
    return out


def _covered(path: str, sources: dict[str, str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) in sources for i in range(1, len(parts) + 1))


@pytest.mark.parametrize(
    "path", sorted(DEVICES_DIR.glob("*.yaml")) + sorted(SYSTEMS_DIR.glob("*.yaml")), ids=str
)
def test_every_number_has_a_source(path: Path) -> None:
    """Walks the raw YAML (independently of the loader): each numeric field has a non-empty
    source; estimates say so."""
    data = yaml.safe_load(path.read_text())
    mappings = [data, *data.get("tiers", [])]
    for mapping in mappings:
        sources = mapping.get("sources", {})
        for numeric in _numeric_paths(mapping):
            assert _covered(numeric, sources), f"{path.name}: no source for {numeric}"
        assert all(isinstance(v, str) and len(v) > 10 for v in sources.values())


def _reference_rows() -> dict[str, dict[str, str]]:
    with open(REFERENCE / "accelerators.csv", newline="") as fh:
        return {row["device"]: row for row in csv.DictReader(fh)}


# device file -> accelerators.csv row (vendor datasheet rows, status V or V/S)
CSV_ROWS = {
    "a100-40gb": "A100-SXM-40GB",
    "a100-80gb": "A100-SXM-80GB",
    "h100-sxm": "H100-SXM5",
    "h100-pcie": "H100-PCIe",
    "h200": "H200-SXM",
    "h20": "H20",
    "b200": "B200 (HGX)",
    "gb200": "GB200 (per GPU)",
    "l40s": "L40S",
    "mi300x": "MI300X",
    "mi325x": "MI325X",
    "tpu-v4": "TPU v4",
    "tpu-v5e": "TPU v5e",
    "tpu-v5p": "TPU v5p",
    "tpu-v6e": "TPU v6e",
    "gaudi2": "Gaudi 2",
    "gaudi3": "Gaudi 3",
    "ascend-910c": "Ascend 910C",
}


def _first_number(text: str) -> float:
    token = text.replace("~", "").split()[0].split("/")[0].split("(")[0]
    return float(token)


@pytest.mark.skipif(not (REFERENCE / "accelerators.csv").exists(), reason="no reference data")
@pytest.mark.parametrize("name", sorted(CSV_ROWS))
def test_device_matches_reference_table(name: str) -> None:
    """Published dense bf16 peak, HBM size and bandwidth (accelerators.csv) within 1%."""
    row = _reference_rows()[CSV_ROWS[name]]
    device = load_device(name)
    assert device.peak("bf16") / 1e12 == pytest.approx(_first_number(row["bf16_TF"]), rel=0.01)
    assert device.memory_bytes / 1e9 == pytest.approx(_first_number(row["hbm_GB"]), rel=0.01)
    assert device.memory_bandwidth_bytes_per_s / 1e12 == pytest.approx(
        _first_number(row["hbm_TBps"]), rel=0.01
    )


# system -> (accelerators.csv row, scale-up tier bandwidth per direction in the table)
SCALE_UP = {
    "dgx-a100": ("A100-SXM-80GB", 300),
    "dgx-h100": ("H100-SXM5", 450),
    "dgx-h200": ("H200-SXM", 450),
    "dgx-b200": ("B200 (HGX)", 900),
    "gb200-nvl72": ("GB200 (per GPU)", 900),
    "mi300x-oam8": ("MI300X", 448),
    "tpu-v4-pod": ("TPU v4", 270),
    "tpu-v5e-pod": ("TPU v5e", 200),
    "tpu-v5p-pod": ("TPU v5p", 600),
    "gaudi3-hls": ("Gaudi 3", 525),
}


@pytest.mark.skipif(not (REFERENCE / "accelerators.csv").exists(), reason="no reference data")
@pytest.mark.parametrize("name", sorted(SCALE_UP))
def test_scale_up_bandwidth_matches_reference(name: str) -> None:
    row_name, table_gbps = SCALE_UP[name]
    row = _reference_rows()[row_name]
    assert _first_number(row["scaleup_GBps_dir"]) == pytest.approx(table_gbps)
    system = load_system(name)
    assert system.tiers[0].bandwidth_bytes_per_s == pytest.approx(table_gbps * 1e9)


@pytest.mark.parametrize(
    ("name", "gbit_per_s"),
    [("dgx-a100", 200), ("dgx-h100", 400), ("hgx-h800", 400), ("dgx-b200", 400), ("hgx-h20", 400)],
)
def test_nic_gbit_converted_to_bytes(name: str, gbit_per_s: int) -> None:
    """accelerators.csv scale-out column is Gb/s per device: 400 Gb/s is 50 GB/s."""
    assert load_system(name).tiers[-1].bandwidth_bytes_per_s == pytest.approx(gbit_per_s / 8 * 1e9)


def test_a_device_file_loads_as_one_device_with_no_network(tmp_path: Path) -> None:
    """What ``nas hw profile`` writes (a device file) works as ``--hardware``: one device."""
    path = tmp_path / "my-box.yaml"
    path.write_text((DEVICES_DIR / "h100-sxm.yaml").read_text())
    system = load_system(str(path))
    assert system.num_devices == 1 and system.max_devices == 1
    assert system.device.name == "h100-sxm"
    assert load_system(str(path), 1).device == system.device
    with pytest.raises(
        ProfileError, match=r"my-box\.yaml: a device profile stands for one device, not 4"
    ):
        load_system(str(path), 4)


def test_a_system_file_without_tiers_says_tiers_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "no-tiers.yaml"
    data = yaml.safe_load((SYSTEMS_DIR / "dgx-h100.yaml").read_text())
    del data["tiers"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"tiers: missing"):
        load_profile(str(path))
