"""Golden test: the inference model against published latencies.

Rows: ``cost_models/validation/data/inference_measurements.csv``, copied from the shared reference set
(``published_inference.csv`` rows of FasterTransformer, TensorRT-LLM, gpt-fast and Vidur;
``published_measurements.csv`` I01-I04 of KIPPLY and LLMCompass), each keeping its source
key. Target (issue 4): median absolute error <= 15% on prefill and decode latency. Every
efficiency comes from the device profiles except two op-class factors
(``INFERENCE_GEMM_DERATE``, ``INFERENCE_GEMM_OVERLAP``), whose leave-one-out error is tested
below.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cost_models.validation.inference import DATA_FILE, summarize, validate_inference_rows

MEDIAN_TOLERANCE = 0.15  # issue 4 accuracy target for inference latency
# Known outliers: FasterTransformer (Triton) GPT-89B/175B batch-1 rows run at ~2x the HBM
# roofline per token (see docs/validation/inference.md); no row may be worse than this, except
# the rows named in UNMODELLED.
WORST_TOLERANCE = 0.60
# Client-side TTFT through vLLM's OpenAI HTTP server on ShareGPT prompts (GPUStack perf lab):
# ~50 ms of per-request front-end work the model has no term for (docs/validation/inference.md)
# GS7/GS9: the same client-side TTFT at concurrency 4 (vLLM, TensorRT-LLM serve): the
# request's wait and prefill are modelled (`ttft_loaded`), the ~35-47 ms front end is not
UNMODELLED = {"GS1", "GS7", "GS9"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return validate_inference_rows()


# Source keys: the shared reference set's files, and the publications added for issue 14,
# each cited in full in docs/validation/inference.md ("Sources added for issue 14").
SHARED_SET_KEYS = ("published_inference.csv", "published_measurements.csv")
ISSUE14_KEYS = (
    "rocm-vllm-mi300x",
    "vllm-ci-perf",
    "gpustack-perflab",
    "nim-benchmarking",
    "trtllm-performance-md",
)
DOC = Path(__file__).resolve().parents[3] / "docs" / "validation" / "inference.md"


def test_every_row_keeps_its_source_key() -> None:
    with DATA_FILE.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) >= 20
    assert len({r["id"] for r in records}) == len(records)
    doc = DOC.read_text()
    for r in records:
        key = r["source_key"].split("#")[0]
        assert key in SHARED_SET_KEYS + ISSUE14_KEYS, r["id"]
        assert key in SHARED_SET_KEYS or f"`{key}`" in doc, f"{key} has no citation in {DOC.name}"
        assert r["source"]


def test_refused_rows_say_why() -> None:
    """Rows the model cannot take stay on file with the reason, in the measurement file's
    columns (none is refused today: GS7-GS9 and VC7-VC9 were until ``ttft_loaded`` and
    ``arch_ref`` existed)."""
    refused = DATA_FILE.with_name("inference_measurements_refused.csv")
    with refused.open(newline="") as fh:
        reader = csv.DictReader(fh)
        records, header = list(reader), reader.fieldnames
    with DATA_FILE.open(newline="") as fh:
        columns = csv.DictReader(fh).fieldnames
    assert header == [*(columns or []), "refused_because"]
    for r in records:
        assert r["refused_because"].strip(), r["id"]


def test_median_error_within_target(rows: list[dict[str, object]]) -> None:
    summary = summarize(rows)  # type: ignore[arg-type]
    assert summary["median_abs_error"] <= MEDIAN_TOLERANCE, summary
    modelled = summarize([r for r in rows if r["id"] not in UNMODELLED])  # type: ignore[arg-type]
    assert modelled["worst_abs_error"] <= WORST_TOLERANCE, modelled
    # the exception is a real miss, not a stale entry
    assert all(abs(float(r["error"])) > WORST_TOLERANCE for r in rows if r["id"] in UNMODELLED)  # type: ignore[arg-type]


def test_prefill_and_decode_medians_separately(rows: list[dict[str, object]]) -> None:
    prefill = [abs(float(r["error"])) for r in rows if r["metric"] in ("ttft", "layer_prefill")]  # type: ignore[arg-type]
    decode = [abs(float(r["error"])) for r in rows if r["metric"] in ("tpot", "layer_decode")]  # type: ignore[arg-type]
    assert len(prefill) >= 5 and len(decode) >= 5
    assert float(np.median(prefill)) <= MEDIAN_TOLERANCE
    assert float(np.median(decode)) <= MEDIAN_TOLERANCE


def test_rows_have_the_documented_fields(rows: list[dict[str, object]]) -> None:
    for r in rows:
        assert {"id", "source", "metric", "measured", "predicted", "error"} <= set(r)
        assert float(r["predicted"]) > 0  # type: ignore[arg-type]
        assert float(r["error"]) == pytest.approx(  # type: ignore[arg-type]
            float(r["predicted"]) / float(r["measured"]) - 1.0  # type: ignore[arg-type]
        )


def test_calibrated_factor_is_the_fit_and_holds_out() -> None:
    """The shipped GEMM derate and overlap equal their fit on the rows, and the leave-one-out
    error (each row predicted by a fit that never saw it) meets the target for prefill and
    decode separately."""
    from cost_models.inference.calibration import INFERENCE_GEMM_DERATE, INFERENCE_GEMM_OVERLAP
    from cost_models.validation.inference_fit import leave_one_out

    loo = leave_one_out()
    # within two grid steps: a small change to a device profile must not fail the suite,
    # a stale calibration file after a large one must
    assert loo.all_rows.gemm_derate == pytest.approx(INFERENCE_GEMM_DERATE, abs=0.041)
    assert loo.all_rows.gemm_overlap == pytest.approx(INFERENCE_GEMM_OVERLAP, abs=0.101)
    assert loo.median_abs_error <= MEDIAN_TOLERANCE
    assert loo.median_for(("ttft", "layer_prefill")) <= MEDIAN_TOLERANCE
    assert loo.median_for(("tpot", "layer_decode")) <= MEDIAN_TOLERANCE
