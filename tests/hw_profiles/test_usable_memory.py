"""Usable memory: where a runtime publishes what one program may allocate (XLA:TPU's HBM
limit), fit checks compare with it instead of the datasheet capacity."""

from __future__ import annotations

import pytest

from cost_models.validation.train import load_train_measurements, predict_row
from hw_profiles import load_device, load_system
from hw_profiles.describe import device_rows
from nas.problem.hardware import scale_system

GIB = 2.0**30


def test_tpu_profiles_state_the_xla_limit_in_gib() -> None:
    v5e, v5p = load_device("tpu-v5e"), load_device("tpu-v5p")
    assert v5e.capacity_bytes == pytest.approx(15.75 * GIB)
    assert v5p.capacity_bytes == pytest.approx(95.74 * GIB)
    assert v5e.memory_bytes == pytest.approx(16e9)  # the datasheet figure is kept as read


def test_gpu_profiles_state_what_cuda_gives_a_process() -> None:
    assert load_device("h100-sxm").capacity_bytes == pytest.approx(79.18 * GIB)
    assert load_device("b200").capacity_bytes == pytest.approx(178.35 * GIB)
    assert load_device("h200").capacity_bytes == pytest.approx(139.80 * GIB)


def test_without_a_usable_figure_the_datasheet_capacity_counts() -> None:
    a100 = load_device("a100-80gb")
    assert a100.usable_memory_bytes is None and a100.capacity_bytes == a100.memory_bytes


def test_describe_shows_the_usable_figure_with_its_source() -> None:
    rows = {name: (value, source) for name, value, source in device_rows(load_device("tpu-v5e"))}
    value, source = rows["usable memory"]
    assert value == "15.75 GiB" and "15.75G hbm" in source
    assert "usable memory" not in {r[0] for r in device_rows(load_device("a100-80gb"))}


def test_scaling_memory_size_scales_the_usable_figure_too() -> None:
    system = load_system("tpu-v5e-pod", num_devices=256)
    half = scale_system(system, memory_size=0.5)
    assert half.device.capacity_bytes == pytest.approx(0.5 * system.device.capacity_bytes)


def test_maxtext_published_runs_fit_their_tpus() -> None:
    """MaxText ran every configuration of its v5e and v5p tables (configs/v5e, configs/v5p
    @76bd53b0f): the model must not call any of them out of memory."""
    rows = [m for m in load_train_measurements() if m.source == "MAXTEXT"]
    assert len(rows) == 40
    unfit = [m.id for m in rows if not predict_row(m)["fits"]]
    assert unfit == []
