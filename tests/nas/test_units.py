"""nas.units: the one formatter of the CLI and the dashboard (3 significant digits, unit stated)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from nas.units import (
    axis_scale,
    axis_ticks,
    format_metric,
    format_number,
    format_value,
    gib_and_gb,
    kind_of,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("params_total", 8_030_261_248, "8.03 B params"),
        ("params_active", 369_649_000, "370 M params"),
        ("params_total", 999.6e6, "1 B params"),  # rounds up into the next suffix
        ("memory_per_device_bytes", 3.618e9, "3.62 GB"),
        ("kv_cache_bytes_per_token", 131_072, "131 kB"),
        ("step_time_s", 0.0012, "1.2 ms"),
        ("step_time_s", 12.345, "12.3 s"),
        ("step_time_s", 4321.0, "4,321 s"),
        ("decode_tpot_s", 2.3e-5, "23 µs"),
        ("decode_tpot_s", 0.99996e-3, "1 ms"),
        ("mfu", 0.4512, "45.1%"),
        ("tokens", 1.5e13, "15 T tokens"),
        ("tokens_per_s", 123_456.0, "123 k tokens/s"),
        ("model_flops_per_token", 1.23e12, "1.23 TFLOP"),
        ("num_layers", 32, "32"),
        ("d_model", np.int64(4096), "4096"),
        ("loss", 2.21182, "2.212"),
        ("loss", float("nan"), "-"),
        ("fits", np.bool_(True), "true"),
        ("plan_recompute", "full", "full"),
    ],
)
def test_metrics_in_human_units(name: str, value: object, text: str) -> None:
    assert format_metric(name, value) == text


def test_no_exponent_form_and_binary_units_named() -> None:
    assert format_number(12345.6) == "12346"
    assert "e" not in format_value(3.618e9, "bytes")
    assert gib_and_gb(80e9) == "74.51 GiB (80.0 GB)"
    assert kind_of("memory_per_device_bytes") == "bytes" and kind_of("ttft_s") == "seconds"


def test_axis_unit_and_few_round_ticks() -> None:
    assert axis_scale(7.9e9, "count", unit="params") == (1e9, "B params")
    assert axis_scale(72e9, "bytes") == (1e9, "GB")
    assert axis_scale(0.0123, "seconds") == (1e-3, "ms")
    assert axis_scale(14336, "number") == (1e3, "k")
    assert axis_scale(128, "number") == (1.0, "")
    for low, high in ((0.3696, 7.896), (2.048, 14.336), (2.21182, 2.40491), (1, 8), (8, 32)):
        values, labels = axis_ticks(low, high, max_ticks=6)
        assert 2 <= len(values) <= 6
        assert all(low - 1e-9 <= v <= high + 1e-9 for v in values)
        assert all(len(label) <= 4 for label in labels)


def test_cli_and_dashboard_define_no_formatter_of_their_own() -> None:
    """One formatter: no format helper functions left in nas/cli or nas/dashboard."""
    for folder in ("nas/cli", "nas/dashboard"):
        for path in sorted((ROOT / folder).glob("*.py")):
            tree = ast.parse(path.read_text())
            names = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
            own = [n for n in names if n in {"fmt", "_fmt", "human", "_billions", "gib_and_gb"}]
            # the estimate and validate tables keep a two-line dispatcher onto nas.units
            allowed = {"estimate.py": ["_fmt"], "validate.py": ["_fmt"]}.get(path.name, [])
            assert own == allowed, f"{path}: {own}"
