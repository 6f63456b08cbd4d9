"""``nas hw list / devices / show``: tables and JSON from the shipped profiles."""

from __future__ import annotations

import json
import sys

import pytest

from hw_profiles import list_systems
from nas.cli import main


def run(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["nas", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_hw_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["hw", "list"], monkeypatch, capsys)
    assert code == 0
    for name in list_systems():
        assert name in out
    assert "nvlink4 x8 switch 450 GB/s" in out
    assert "ici-v4 x4096 torus3d 16x16x16 270 GB/s" in out


def test_hw_devices(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["hw", "devices"], monkeypatch, capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if " h100-sxm " in line)
    assert "989.4" in row and "80" in row and "3.35" in row


def test_hw_show_system_has_units_and_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["hw", "show", "dgx-h100"], monkeypatch, capsys)
    assert code == 0
    assert "450 GB/s per device per direction" in out
    assert "1.90 us" in out and "989.4 TFLOP/s" in out and "3.35 TB/s" in out
    assert "NCCL src/graph/tuning.cc" in out  # a source is printed next to its number


def test_hw_show_json_is_si(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["hw", "show", "gb200-nvl72", "--json", "--num-devices", "144"], monkeypatch, capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["num_devices"] == 144
    assert data["tiers"][0]["group_size"] == 72
    assert data["tiers"][0]["bandwidth_bytes_per_s"] == pytest.approx(900e9)
    assert data["device"]["peak_flops_per_s"]["bf16"] == pytest.approx(2500e12)


def test_hw_show_device_and_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["hw", "show", "mi300x"], monkeypatch, capsys)
    assert code == 0 and "1,307 TFLOP/s" in out and "Max-Achievable" in out
    code, _, err = run(["hw", "show", "dgx-h1000"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: unknown system or device 'dgx-h1000'; systems:")
    code, _, err = run(["hw", "show", "mi300x", "--num-devices", "8"], monkeypatch, capsys)
    assert code == 2 and "is a device, not a system" in err
