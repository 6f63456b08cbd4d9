"""The calibrated parameters of the cost models, each with its meaning, fitted value and the
range it was fitted over (``nas validate`` prints them under the headline; ``--json`` carries
them as ``calibration``). Values are read from the shipped files, ranges from the fits' grids."""

from __future__ import annotations

from typing import Any

from cost_models.inference.calibration import INFERENCE_GEMM_DERATE, INFERENCE_GEMM_OVERLAP
from cost_models.stacks import POOLED_OVERHEAD, calibrated_step_overhead_s
from cost_models.train.calibration import SAME_SILICON, load_calibration
from cost_models.validation.inference_fit import DERATE_GRID, OVERHEAD_GRID_S, OVERLAP_GRID
from cost_models.validation.train_fit import FRACTIONS, OVERLAPS

__all__ = ["calibrated_parameters"]


def _row(name: str, applies_to: str, value: float, grid: tuple[float, ...], meaning: str,
         unit: str = "") -> dict[str, Any]:  # fmt: skip
    return {"name": name, "applies_to": applies_to, "value": value, "low": min(grid),
            "high": max(grid), "unit": unit, "meaning": meaning}  # fmt: skip


def calibrated_parameters() -> list[dict[str, Any]]:
    """Every fitted constant: ``name``, ``applies_to`` (device, op class or stack), ``value``,
    ``low``/``high`` (the grid it was chosen on), ``unit`` and ``meaning``."""
    train = load_calibration()
    shared = {d: [k for k, v in SAME_SILICON.items() if v == d] for d in train.compute_fraction}
    meaning = "share of the profile's kernel speed sustained in a training loop"
    out = []
    for device, value in sorted(train.compute_fraction.items()):
        who = ", ".join([device, *shared[device]])
        out.append(_row("compute_fraction", who, value, FRACTIONS, meaning))
    out.append(_row("overlap_efficiency", "overlapped communication (training)",
                    train.overlap_efficiency, OVERLAPS,
                    "share of the overlapped communication actually hidden"))  # fmt: skip
    out.append(_row("gemm_derate", "inference GEMMs", INFERENCE_GEMM_DERATE, DERATE_GRID,
                    "sustained GEMM efficiency of serving engines over the profile's"))  # fmt: skip
    out.append(_row("gemm_overlap", "inference GEMMs", INFERENCE_GEMM_OVERLAP, OVERLAP_GRID,
                    "share of a GEMM's shorter term (compute or HBM) hidden under the longer"))  # fmt: skip
    for stack, value in sorted(calibrated_step_overhead_s().items()):
        who = "serving stacks without their own" if stack == POOLED_OVERHEAD else stack
        out.append(_row("step_overhead_s", who, value, OVERHEAD_GRID_S,
                        "host time per engine iteration the device waits for", "s"))  # fmt: skip
    return out
