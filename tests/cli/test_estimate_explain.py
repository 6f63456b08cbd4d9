"""`nas estimate` explains itself: nothing fits (first), why this plan, the planner's global
batch, and one memory headroom (0.9 of device memory unless given)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASE = ("estimate", "llama3-70b", "--hardware", "dgx-h100")


def _nas(*args: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=170,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)},
    )


def _json(*args: str) -> dict[str, Any]:
    result = _nas(*BASE, *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_nothing_fits_is_said_first_with_the_smallest_count_that_fits() -> None:
    result = _nas(*BASE, "--num-devices", "8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("NOTHING FITS on 8x dgx-h100")
    assert lines[1].lstrip().startswith("least-memory plan: ")
    smallest = int(lines[2].split("fits: ")[1].split()[0])
    # the count it names does fit, and half of it does not
    assert _json("--num-devices", str(smallest))["fits"] is True
    assert _json("--num-devices", str(smallest // 2))["fits"] is False
    assert "fastest, does NOT fit" in result.stdout


def test_why_this_plan_and_the_batch_note() -> None:
    out = _nas(*BASE, "--num-devices", "64").stdout
    assert "why this plan: the planner's top 5 of" in out
    assert "note: global batch 1,024 sequences" in out
    pinned = _nas(*BASE, "--num-devices", "64", "--global-batch", "512").stdout
    assert "note: global batch" not in pinned


def test_one_headroom_for_the_planner() -> None:
    default = _json("--num-devices", "64")
    assert default["memory_headroom"] == 0.9
    limit = 0.9 * default["device_memory_bytes"]
    for row in default["planner"]["top"]:
        assert row["fits"] == (row["memory_per_device_bytes"] <= limit)
    full = _json("--num-devices", "64", "--memory-headroom", "1.0")
    assert full["planner"]["fitting"] > default["planner"]["fitting"]
    bad = _nas(*BASE, "--memory-headroom", "0")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --memory-headroom")


def test_decode_prints_each_breakdown_once_and_explains_other() -> None:
    args = ("estimate", "llama3-8b", "--hardware", "dgx-h100", "--num-devices", "8")
    out = _nas(*args, "--mode", "decode", "--batch", "32").stdout
    titles = [line.strip() for line in out.splitlines() if "breakdown" in line]
    assert len(titles) == len(set(titles)) == 3  # time (= decode), prefill, memory
    assert "time 'other': the fixed launch and gap time" in out
