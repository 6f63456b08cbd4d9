"""The headline of ``nas validate``: leave-one-source-out errors (cost_models.validation.holdout).

Pinned medians (issue targets for the regression guard): training tokens/s per device <= 12%,
inference TTFT/TPOT/end-to-end <= 14%. At the commit that added this test they were 6.7%
(48 rows, 8 publications) and 12.7% (19 rows, 4 publications); with Transformer Engine's FP8
casts (``fp8_casts: fused``) and the Llama 3 405B rows: 9.9% (77 rows, 13 publications) and
11.2% (49 rows, 8 publications); with the GEMM overlap, PaLM, the Mixtral and loaded-TTFT rows:
9.96% (78 rows, 14 publications) and 7.5% (55 rows, 8 publications).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cost_models.validation.holdout import family_of, headline, held_out_errors, refused_rows
from cost_models.validation.inference import publication, validate_inference_rows
from cost_models.validation.train import validate_training_rows


@pytest.fixture(scope="module")
def rows_and_errors() -> tuple[list[dict[str, Any]], list[float]]:
    rows = [dict(r, kind="train") for r in validate_training_rows()]
    rows += [dict(r, kind="inference") for r in validate_inference_rows()]
    return rows, held_out_errors(rows)


def _median(rows: list[dict[str, Any]], errors: list[float], metrics: set[str]) -> float:
    picked = [abs(e) for r, e in zip(rows, errors, strict=True) if r["metric"] in metrics]
    assert picked
    return float(np.median(picked))


def test_training_throughput_held_out_median_is_pinned(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    metrics = {"tokens/s per device", "tokens/s per device (held out)"}
    assert _median(rows, errors, metrics) <= 0.12


def test_inference_latency_held_out_median_is_pinned(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    assert _median(rows, errors, {"ttft", "tpot", "e2e"}) <= 0.14


def test_fitted_rows_are_refitted_without_their_source(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    fitted = [
        (r, e) for r, e in zip(rows, errors, strict=True) if r["metric"] == "tokens/s per device"
    ]
    # a refit without the row's source moves the prediction of most fitted rows
    moved = sum(abs(e - r["error"]) > 1e-6 for r, e in fitted)
    assert moved >= len(fitted) // 2
    # and the held-out error is, on the median, no smaller than the fitted one
    assert np.median([abs(e) for _, e in fitted]) >= np.median([abs(r["error"]) for r, _ in fitted])


def test_rows_never_fitted_keep_their_error(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    held = [(r, e) for r, e in zip(rows, errors, strict=True) if "(held out)" in r["metric"]]
    assert held
    assert all(e == r["error"] for r, e in held)


def test_headline_families_cover_every_row(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    assert all(family_of(r) is not None for r in rows)
    heads = headline(rows, errors)
    assert sum(h["rows"] for h in heads.values()) == len(rows)
    assert heads["training tokens/s per device"]["sources"] == 15  # 14 + MaxText (TPU v5e)


def test_every_publication_weighs_the_same_in_the_second_median() -> None:
    rows = [{"kind": "train", "metric": "tokens/s per device", "id": str(i),
             "publication": "BIG" if i < 9 else f"P{i}"} for i in range(11)]  # fmt: skip
    errors = [0.01] * 9 + [0.3, 0.5]  # nine easy rows of one source, two hard ones
    head = headline(rows, errors)["training tokens/s per device"]
    assert head["median_abs_error"] == pytest.approx(0.01)
    assert head["median_of_publication_medians"] == pytest.approx(0.3)  # of 0.01, 0.3, 0.5
    assert head["sources"] == 3


def test_publication_groups_one_document() -> None:
    a = "NVIDIA/FasterTransformer docs/gpt_guide.md (Performance: GPT-175B)"
    b = "NVIDIA/FasterTransformer docs/gpt_guide.md (Performance: GPT-89B)"
    assert publication(a) == publication(b) == "NVIDIA/FasterTransformer"
    assert publication("KIPPLY (kipp.ly Transformer Inference Arithmetic)") == "KIPPLY"


def test_nas_validate_prints_the_headline_first(nas_cli: Any) -> None:
    code, out, _ = nas_cli(["validate", "--kind", "inference"])
    assert code == 0, out
    assert out.index("leave-one-source-out") < out.index("published measurements")


def test_validate_reports_each_fitted_parameter_within_its_range(nas_cli: Any) -> None:
    import json

    code, out, _ = nas_cli(["validate", "--kind", "inference", "--json"])
    assert code == 0
    params = json.loads(out)["calibration"]
    names = {p["name"] for p in params}
    assert {
        "compute_fraction",
        "overlap_efficiency",
        "gemm_derate",
        "gemm_overlap",
        "step_overhead_s",
    } <= names
    for p in params:
        assert p["low"] <= p["value"] <= p["high"], p
        assert p["applies_to"] and p["meaning"]
    h100 = next(
        p for p in params if p["name"] == "compute_fraction" and "h100-sxm" in p["applies_to"]
    )
    assert "h800" in h100["applies_to"]  # same die: shares the fitted value
    code, out, _ = nas_cli(["validate", "--kind", "inference"])
    assert code == 0 and "Calibrated parameters" in out and "step_overhead_s" in out


def test_every_published_row_gets_an_estimate() -> None:
    """Issue 14's target: no row on file is refused (the refused files keep their header for
    rows a later model cannot take, each with its reason; ``nas validate`` prints them)."""
    refused = refused_rows()
    assert set(refused) == {"train", "inference"}
    assert refused == {"train": [], "inference": []}


# Rows whose leave-one-source-out |error| exceeds issue 14's 35% bound at this commit; the set
# may shrink, never grow (a new row beyond the bound must be added here with its reason in
# docs/validation.md). H01 left it when the overlap efficiency got its plausible range, M17
# at 768 GPUs when the deepspeed-2021 stack stated its per-rank copies.
KNOWN_BEYOND_BOUND = {"MB11", "N15-3", "GS1", "GS7", "GS8", "GS9", "PI1", "PI5"}


def test_rows_beyond_the_bound_may_shrink_never_grow(rows_and_errors: Any) -> None:
    rows, errors = rows_and_errors
    heads = headline(rows, errors)
    beyond = [b for h in heads.values() for b in h["beyond_bound"]]
    assert all(abs(b["error"]) > 0.35 for b in beyond)
    assert {b["id"] for b in beyond} <= KNOWN_BEYOND_BOUND
    for h in heads.values():  # worst first, and the worst row heads the list when beyond
        sizes = [abs(b["error"]) for b in h["beyond_bound"]]
        assert sizes == sorted(sizes, reverse=True)
        if sizes:
            assert sizes[0] == pytest.approx(h["worst_abs_error"])
