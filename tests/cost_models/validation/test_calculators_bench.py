"""bench/bench_vs_calculators.py: llm-analysis and a constant-MFU calculator beside the cost
model on the training rows (llm-analysis is installed by .ci/run; elsewhere this skips)."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cost_models.validation.train import load_train_measurements, prepare_row

pytest.importorskip("llm_analysis")

ROOT = Path(__file__).resolve().parents[3]


def _bench() -> ModuleType:
    path = ROOT / "bench" / "bench_vs_calculators.py"
    spec = importlib.util.spec_from_file_location("bench_vs_calculators", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _row(label: str) -> object:
    return prepare_row(next(m for m in load_train_measurements() if m.label == label))


def test_llm_analysis_runs_the_row_and_speeds_up_with_its_efficiency() -> None:
    bench = _bench()
    tokens = bench.llm_analysis_tokens_per_s(_row("M01"), np.array([0.5, 1.0]))
    assert np.all(np.isfinite(tokens)) and tokens[0] > 0
    assert tokens[1] > tokens[0]


def test_a_gpu_it_does_not_ship_gets_a_config_from_the_profile() -> None:
    bench = _bench()
    row = _row("TT1")  # H100 SXM 96 GB 500 W: its peaks and HBM are the profile's
    config, origin = bench.gpu_config(row)
    device = row.system.device  # type: ignore[attr-defined]
    assert origin == "from profile"
    assert config.peak_fp16_TFLOPS == pytest.approx(device.peak("bf16") / 1e12)
    assert config.peak_i8_TFLOPS == pytest.approx(device.peak("fp8") / 1e12)
    assert config.hbm_bandwidth_in_GB_per_sec == pytest.approx(2400.0)
    shipped, origin = bench.gpu_config(_row("M01"))
    assert origin == "shipped" and shipped.name == "a100-sxm-80gb"


def test_the_bench_prints_both_tables_and_writes_every_row(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_vs_calculators.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Rows both can express" in done.stdout and "Every row" in done.stdout
    with (tmp_path / "calculators_side_by_side.csv").open() as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["M01"]["llm_analysis_0.5"] and rows["M01"]["constant_mfu_fitted"]
    assert rows["MX16-1"]["left_out_because"].startswith("tpu")
    assert rows["D1"]["left_out_because"] == "context parallelism"
    assert not rows["D1"]["llm_analysis_fitted"] and rows["D1"]["this_project"]
