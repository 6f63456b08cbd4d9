"""bench/bench_inference_variants.py: other parameterisations of the inference calibration,
judged leave-one-source-out like the shipped one."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from cost_models.validation.inference import load_measurements
from cost_models.validation.inference_fit import leave_one_source_out
from tests.cost_models.validation.bench_modules import import_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return import_bench("bench_inference_variants")


def test_the_shipped_variant_is_the_shipped_held_out_check(bench: ModuleType) -> None:
    rows = load_measurements()
    shipped = bench.shared_derate(rows, bench.fit_mod.DERATE_GRID, "shipped")
    assert shipped.errors == pytest.approx(np.array(leave_one_source_out(rows).errors))


def test_a_derate_per_device_predicts_each_held_out_row_from_the_others(
    bench: ModuleType,
) -> None:
    rows = load_measurements()
    outcome = bench.per_device_derate(rows)
    assert outcome.errors.shape == (len(rows),)
    assert np.all(np.isfinite(outcome.errors))
    # every device die present in the rows gets a fitted value on the full fit
    assert "a100-80gb" in outcome.fitted and "h100-sxm" in outcome.fitted
    text = bench.report(rows, [outcome])
    assert "TTFT" in text and "derate per device" in text
