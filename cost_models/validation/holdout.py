"""Leave-one-source-out: the headline accuracy of the cost models.

Every row is predicted by a model whose calibrated parameters were fitted without any row of
the row's own publication (its source), the honest estimate of the error on a measurement the
project has never seen. Rows of one publication share hardware, software and conventions, so
leaving out one row at a time would still let the fit see that setup.

* Training throughput rows that the calibration is fitted on
  (:mod:`cost_models.validation.train_fit`): refit on the other sources, predict the row
  (plans as the fit chose them, without calibration).
* Training rows never fitted on (``holdout`` = 1; a whole source) are predicted by the
  shipped calibration, which never saw them.
* Memory rows: no parameter of the memory model is fitted, so the held-out error is the error.
* Inference rows: the one inference parameter
  (:data:`~cost_models.inference.calibration.INFERENCE_GEMM_DERATE`) refitted without each
  publication (:func:`~cost_models.validation.inference_fit.leave_one_source_out`).

Families: training tokens/s per device, training memory, TTFT, TPOT, end-to-end latency and
per-layer inference times; each reports the median and worst |error| and the worst row.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cost_models.validation.inference_fit import leave_one_source_out as inference_loso
from cost_models.validation.train_fit import error_table, fitted_rows
from cost_models.validation.train_fit import leave_one_source_out as train_loso

__all__ = ["FAMILIES", "ROW_BOUND", "family_of", "headline", "held_out_errors", "refused_rows"]

# family -> (kind, metrics of the validate rows it covers)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "training tokens/s per device": (
        "train",
        ("tokens/s per device", "tokens/s per device (held out)"),
    ),
    "training memory": (
        "train",
        ("activation memory", "peak memory", "peak memory (held out)"),
    ),
    "inference TTFT": ("inference", ("ttft", "ttft_loaded")),
    "inference TPOT": ("inference", ("tpot",)),
    "inference end-to-end": ("inference", ("e2e",)),
    "inference per layer": ("inference", ("layer_linear", "layer_prefill", "layer_decode")),
}


def family_of(row: Mapping[str, Any]) -> str | None:
    """The headline family of a ``nas validate`` row (``kind`` and ``metric``)."""
    for name, (kind, metrics) in FAMILIES.items():
        if row.get("kind") == kind and row.get("metric") in metrics:
            return name
    return None


def _training_fitted_rows() -> dict[str, float]:
    """Leave-one-source-out error of every training row the calibration is fitted on."""
    rows = fitted_rows()
    table = error_table(rows)
    errors = train_loso(table, [p.measurement.source for p in rows])
    return dict(zip(table.labels, errors, strict=True))


def held_out_errors(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """The leave-one-source-out error of each ``nas validate`` row (see the module docstring):
    refitted for calibrated rows, the row's own error where nothing it depends on is fitted."""
    kinds = {r.get("kind") for r in rows}
    train = _training_fitted_rows() if "train" in kinds else {}
    inference: dict[str, float] = {}
    if "inference" in kinds:
        result = inference_loso()
        inference = dict(zip(result.ids, result.errors, strict=True))
    out = []
    for r in rows:
        table = train if r.get("kind") == "train" else inference
        out.append(float(table.get(str(r["id"]), r["error"])))
    return out


# Issue 14's bound for every row: |leave-one-source-out error| within 35%.
ROW_BOUND = 0.35


def headline(rows: Sequence[Mapping[str, Any]], errors: Sequence[float]) -> dict[str, Any]:
    """Per family: rows, median and worst |leave-one-source-out error| and the worst row,
    the median of each publication's own median (every publication weighs the same,
    however many rows it gives), and ``beyond_bound``: the rows beyond :data:`ROW_BOUND`
    (``id`` and signed ``error``, worst first)."""
    out: dict[str, Any] = {}
    for name in FAMILIES:
        signed = [(e, r) for r, e in zip(rows, errors, strict=True) if family_of(r) == name]
        beyond = sorted(((e, r) for e, r in signed if abs(e) > ROW_BOUND), key=lambda p: -abs(p[0]))
        picked = [(abs(e), r) for e, r in signed]
        if not picked:
            continue
        values = np.array([p[0] for p in picked])
        worst = int(np.argmax(values))
        per_pub: dict[str, list[float]] = {}
        for value, row in picked:
            per_pub.setdefault(str(row.get("publication", "")), []).append(value)
        out[name] = {
            "rows": len(picked),
            "sources": len(per_pub),
            "median_abs_error": float(np.median(values)),
            "median_of_publication_medians": float(
                np.median([np.median(v) for v in per_pub.values()])
            ),
            "worst_abs_error": float(values[worst]),
            "worst_id": str(picked[worst][1]["id"]),
            "beyond_bound": [{"id": str(r["id"]), "error": float(e)} for e, r in beyond],
        }
    return out


_DATA_DIR = Path(__file__).resolve().parent / "data"


def refused_rows() -> dict[str, list[dict[str, str]]]:
    """Published rows on file that the models cannot estimate, per kind (``train``,
    ``inference``): ``id``, ``source`` and ``refused_because`` from the
    ``*_measurements_refused.csv`` files. Empty lists when every row gets an estimate."""
    out: dict[str, list[dict[str, str]]] = {}
    for kind in ("train", "inference"):
        with (_DATA_DIR / f"{kind}_measurements_refused.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        out[kind] = [{"id": r["id"], "source": r.get("source", ""),
                      "refused_because": r["refused_because"]} for r in rows]  # fmt: skip
    return out
