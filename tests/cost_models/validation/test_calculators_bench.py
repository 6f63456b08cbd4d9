"""bench/bench_vs_calculators.py: llm-analysis and a constant-MFU calculator beside the cost
models on the published rows (llm-analysis is installed by .ci/run; elsewhere this skips)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cost_models.validation.inference import load_measurements, measurement_system
from cost_models.validation.train import PreparedRow, load_train_measurements, prepare_row
from tests.cost_models.validation.bench_modules import import_bench

pytest.importorskip("llm_analysis")

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def adapter() -> ModuleType:
    return import_bench("llm_analysis_adapter")


def _row(label: str) -> PreparedRow:
    return prepare_row(next(m for m in load_train_measurements() if m.label == label))


def test_llm_analysis_trains_the_row_faster_at_a_higher_efficiency(adapter: ModuleType) -> None:
    tokens = adapter.training_tokens_per_s(_row("M01"), np.array([0.5, 1.0]))
    assert np.all(np.isfinite(tokens)) and tokens[0] > 0
    assert tokens[1] > tokens[0]


def test_llm_analysis_decode_is_bound_by_its_hbm_efficiency(adapter: ModuleType) -> None:
    m = next(x for x in load_measurements() if x.id == "PI44")  # gpt-fast Llama-2-7B, batch 1
    tpot = adapter.inference_latency_s(
        m.arch, measurement_system(m), tp=1, batch_per_replica=1, in_len=m.in_len,
        out_len=m.out_len, weight_dtype=m.weight_dtype, kv_dtype=m.kv_dtype, metric="tpot",
        pairs=[(1.0, 1.0), (1.0, 0.5)],
    )  # fmt: skip
    # batch-1 decode reads every weight once: half the bandwidth, about twice the time
    assert tpot[1] / tpot[0] == pytest.approx(2.0, rel=0.05)
    assert 0.004 < tpot[0] < 0.008  # 13.5 GB of fp16 weights at 2.04 TB/s: 6.6 ms


def test_a_gpu_it_does_not_ship_gets_a_config_from_the_profile(adapter: ModuleType) -> None:
    row = _row("TT1")  # H100 SXM 96 GB 500 W: its peaks and HBM are the profile's
    config, origin = adapter.gpu_config(row.system)
    device = row.system.device
    assert origin == "from profile"
    assert config.peak_fp16_TFLOPS == pytest.approx(device.peak("bf16") / 1e12)
    assert config.peak_i8_TFLOPS == pytest.approx(device.peak("fp8") / 1e12)
    assert config.hbm_bandwidth_in_GB_per_sec == pytest.approx(2400.0)
    shipped, origin = adapter.gpu_config(_row("M01").system)
    assert origin == "shipped" and shipped.name == "a100-sxm-80gb"


def test_the_bench_compares_every_row_it_can_express(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_vs_calculators.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rows every calculator can express" in done.stdout
    with (tmp_path / "calculators_side_by_side.csv").open() as f:
        rows = {(r["id"], r["calculator"]): r for r in csv.DictReader(f)}
    fitted = "llm-analysis 0.2.2, flops_efficiency fitted"
    assert rows[("M01", fitted)]["held_out_error"]
    assert rows[("M01", "constant MFU, fitted")]["held_out_error"]
    assert rows[("MX16-1", fitted)]["left_out_because"].startswith("tpu")
    assert not rows[("MX16-1", fitted)]["held_out_error"]
    assert rows[("D1", fitted)]["left_out_because"] == "context parallelism"
    assert rows[("GS1", "llm-analysis 0.2.2, both efficiencies fitted")]["held_out_error"]
    assert rows[("GS1", "this project")]["held_out_error"]
