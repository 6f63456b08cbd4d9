"""``nas hw list / devices / show``: tables and JSON from the shipped profiles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from hw_profiles import list_systems

if TYPE_CHECKING:  # the fixture lives in tests/conftest.py
    from conftest import NasRun


def test_hw_list(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["hw", "list"])
    assert code == 0
    for name in list_systems():
        assert name in out
    assert "nvlink4 x8 switch 450 GB/s" in out
    assert "ici-v4 x4096 torus3d 16x16x16 270 GB/s" in out


def test_hw_devices(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["hw", "devices"])
    assert code == 0
    row = next(line for line in out.splitlines() if " h100-sxm " in line)
    assert "989.4" in row and "80" in row and "3.35" in row


def test_hw_show_system_has_units_and_sources(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["hw", "show", "dgx-h100"])
    assert code == 0
    assert "450 GB/s per device per direction" in out
    assert "1.90 us" in out and "989.4 TFLOP/s" in out and "3.35 TB/s" in out
    assert "NCCL src/graph/tuning.cc" in out  # a source is printed next to its number


def test_hw_show_json_is_si(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["hw", "show", "gb200-nvl72", "--json", "--num-devices", "144"])
    assert code == 0
    data = json.loads(out)
    assert data["num_devices"] == 144
    assert data["tiers"][0]["group_size"] == 72
    assert data["tiers"][0]["bandwidth_bytes_per_s"] == pytest.approx(900e9)
    assert data["device"]["peak_flops_per_s"]["bf16"] == pytest.approx(2500e12)


def test_hw_show_device_and_unknown(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["hw", "show", "mi300x"])
    assert code == 0 and "1,307 TFLOP/s" in out and "Max-Achievable" in out
    code, _, err = nas_cli(["hw", "show", "dgx-h1000"])
    assert code == 2 and err.startswith("error: unknown system or device 'dgx-h1000'; systems:")
    code, _, err = nas_cli(["hw", "show", "mi300x", "--num-devices", "8"])
    assert code == 2 and "is a device, not a system" in err
