"""``nas hw profile``: measures this machine and writes a device file that loads like any other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hw_profiles import load_device, load_system
from hw_profiles.profiler import ProfileResult, profile_to_mapping, profile_to_yaml
from nas.cli import main


def _result() -> ProfileResult:
    return ProfileResult(
        name="synthetic",
        vendor="Test",
        kind="gpu",
        device_name="Synthetic GPU",
        date="2026-01-01 00:00 UTC",
        gemm_flops_per_s={
            "bf16": {256: 1e13, 1024: 4e13, 4096: 8e13},
            "fp32": {256: 1e12, 1024: 2e12, 4096: 2.5e12},
        },
        attention_flops_per_s=4e13,
        copy_bytes_per_s=2e12,
        launch_s=5e-6,
        memory_bytes=80e9,
        onchip_bytes=50e6,
        power_w=700.0,
        notes={"torch": "x", "threads": 1, "quick": True, "repeats": 3},
    )


def test_mapping_from_measurements(tmp_path: Path) -> None:
    """Peak = best median rate; curve = rate / peak by GEMM FLOPs (2 n^3)."""
    mapping = profile_to_mapping(_result())
    assert mapping["peak_tflops"] == {"bf16": 80.0, "fp32": 2.5}
    assert mapping["gemm_efficiency_curve"]["fraction"] == [0.125, 0.5, 1.0]
    assert mapping["gemm_efficiency_curve"]["gflop"][0] == pytest.approx(2 * 256**3 / 1e9, rel=1e-5)
    assert mapping["attention_efficiency"] == 0.5
    path = tmp_path / "synthetic.yaml"
    path.write_text(profile_to_yaml(_result()))
    device = load_device(str(path))
    assert device.peak("bf16") == pytest.approx(80e12)
    assert device.memory_bandwidth_bytes_per_s == pytest.approx(2e12)
    assert device.gemm_efficiency_at(2 * 1024**3) == pytest.approx(0.5, rel=1e-3)
    assert "measured by nas hw profile on 2026-01-01" in device.sources["peak_tflops"]
    # a profiled GPU's fit checks use the runtime's own total, not a datasheet reading
    assert mapping["usable_memory_gib"] == pytest.approx(80e9 / 2**30, abs=1e-3)
    assert device.capacity_bytes == pytest.approx(80e9, rel=1e-5)


def test_quick_profile_via_cli_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real quick run on this machine (CPU here): the file loads, and a system file can
    reference it by path."""
    out = tmp_path / "local.yaml"
    monkeypatch.setattr(sys, "argv", ["nas", "hw", "profile", "--quick", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    device = load_device(str(out))
    assert device.kind in ("cpu", "gpu")
    expected = {"fp32", "bf16"} if device.kind == "cpu" else {"bf16", "fp16", "tf32", "fp32"}
    assert set(device.peak_flops_per_s) == expected
    assert all(p > 1e8 for p in device.peak_flops_per_s.values())  # > 0.1 GFLOP/s
    assert device.memory_bandwidth_bytes_per_s > 1e8
    assert device.gemm_efficiency_curve is not None
    assert max(device.gemm_efficiency_curve.fractions) == 1.0
    system = tmp_path / "local-system.yaml"
    system.write_text(
        f"name: local\ndevice: {out.name}\ndevices_per_node: 1\nmax_devices: 1\n"
        "tiers:\n  - {name: loopback, group_size: 1, bandwidth_gb_per_s: 10, latency_us: 1,\n"
        "     efficiency: 1, topology: switch,\n"
        "     sources: {group_size: test, bandwidth_gb_per_s: test, latency_us: test, efficiency: test}}\n"
        "sources: {devices_per_node: test, max_devices: test}\n"
    )
    assert load_system(str(system)).device == device
