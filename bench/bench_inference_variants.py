"""Variants of the inference calibration, each judged leave-one-source-out as the shipped one
is (``nas validate``): does a different parameterisation generalise better?

1. **shipped**: one GEMM derate for every device (grid 0.60-1.00) and one GEMM overlap, with
   the per-stack step overheads (:mod:`cost_models.validation.inference_fit`).
2. **wide derate**: the same on a derate grid of 0.60-1.20. The shipped fit sits at the top of
   its grid (1.00); this shows whether the edge binds (a derate above 1 would mean GEMMs
   faster than the device profile's efficiency, which the profiles' 0.8 for A100 and H100
   allows: large cuBLAS GEMMs reach 0.8-0.9 of peak, the profiles take the lower end).
3. **derate per device**: one derate per device die, as the training model's
   ``compute_fraction`` is fitted per device (:mod:`cost_models.train.calibration`; the
   training fit finds H100 sustaining 0.675 of its profile against A100's 0.85). Dies shared
   by two profiles share it (A100 40/80 GB; H100/H200: one GH100 die at 700 W). A device
   whose rows are all held out takes the mean of the fitted devices (the training rule).
   Fitted by coordinate descent: for each overlap, the stack overheads and each device's
   derate in turn, four rounds.

Figures are median |error| per metric family over the held-out rows, as ``nas validate``
reports them. Run: ``python bench/bench_inference_variants.py [--out bench/results]``
(about 10 s).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cost_models.validation import inference_fit as fit_mod
from cost_models.validation.inference import (
    Measurement,
    load_measurements,
    measurement_system,
    publication,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FAMILIES: dict[str, tuple[str, ...]] = {
    "TTFT": ("ttft", "ttft_loaded"),
    "TPOT": ("tpot",),
    "end-to-end": ("e2e",),
    "per layer": ("layer_prefill", "layer_decode", "layer_linear"),
}
# one die under two profiles (see the module docstring)
SAME_DIE: dict[str, str] = {"a100-40gb": "a100-80gb", "h200": "h100-sxm"}
WIDE_DERATE_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.60, 1.2001, 0.02), 2))
ROUNDS = 4


@dataclass(frozen=True)
class Outcome:
    name: str
    errors: FloatArray  # held-out relative error per row
    fitted: str  # the parameters fitted on every row, as text


def _grid(derates: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((d, o) for d in derates for o in fit_mod.OVERLAP_GRID)


def shared_derate(rows: list[Measurement], derates: tuple[float, ...], name: str) -> Outcome:
    loso = fit_mod.leave_one_source_out(rows, _grid(derates))
    f = loso.all_rows
    text = f"derate {f.gemm_derate:.2f}, overlap {f.gemm_overlap:.2f}"
    return Outcome(name, np.array(loso.errors), text)


@dataclass(frozen=True)
class _PerDevice:
    table: fit_mod._Table  # every row's prediction without overhead at every grid pair
    index: dict[tuple[float, float], int]
    device: npt.NDArray[np.str_]

    def base_s(self, derate: dict[str, float], overlap: float) -> FloatArray:
        """Each row's prediction without overhead under its device's derate."""
        fallback = _snap(float(np.mean(list(derate.values()))))
        pick = [self.index[(derate.get(str(d), fallback), overlap)] for d in self.device]
        out: FloatArray = self.table.base_s[np.array(pick), np.arange(len(self.device))]
        return out

    def with_overheads(self, base_s: FloatArray, use: BoolArray) -> FloatArray:
        one = fit_mod._Table(base_s=base_s[None, :], measured_s=self.table.measured_s,
                             steps=self.table.steps, stacks=self.table.stacks,
                             publications=self.table.publications)  # fmt: skip
        _, overheads = fit_mod._fit(one, ((0.0, 0.0),), use)
        out: FloatArray = base_s + self.table.steps * fit_mod._overhead_array(one, overheads)
        return out


def _snap(derate: float) -> float:
    grid = np.array(fit_mod.DERATE_GRID)
    return float(grid[int(np.argmin(np.abs(grid - derate)))])


def _loss(predicted: FloatArray, measured: FloatArray, rows: BoolArray) -> float:
    return float(np.sum(np.abs(np.log(predicted[rows] / measured[rows]))))


def _fit_per_device(p: _PerDevice, use: BoolArray) -> tuple[float, FloatArray, str]:
    """(loss, predictions of every row, fitted values as text) of the best overlap."""
    measured = p.table.measured_s
    best: tuple[float, FloatArray, str] | None = None
    for overlap in fit_mod.OVERLAP_GRID:
        derate = {str(d): 0.8 for d in sorted(set(p.device[use]))}
        for _ in range(ROUNDS):
            predicted = p.with_overheads(p.base_s(derate, overlap), use)
            overhead_s = predicted - p.base_s(derate, overlap)
            for dev in derate:
                rows = use & (p.device == dev)
                losses = [_loss(p.base_s({**derate, dev: d}, overlap) + overhead_s, measured,
                                rows) for d in fit_mod.DERATE_GRID]  # fmt: skip
                derate[dev] = fit_mod.DERATE_GRID[int(np.argmin(losses))]
        predicted = p.with_overheads(p.base_s(derate, overlap), use)
        loss = _loss(predicted, measured, use)
        if best is None or loss < best[0]:
            text = ", ".join(f"{k} {v:.2f}" for k, v in derate.items())
            best = (loss, predicted, f"overlap {overlap:.2f}; derate {text}")
    assert best is not None
    return best


def per_device_derate(rows: list[Measurement]) -> Outcome:
    grid = _grid(fit_mod.DERATE_GRID)
    devices = [measurement_system(m).device.name for m in rows]
    p = _PerDevice(
        table=fit_mod._table(rows, grid),
        index={pair: i for i, pair in enumerate(grid)},
        device=np.array([SAME_DIE.get(d, d) for d in devices]),
    )
    pubs = np.array([publication(m.source) for m in rows])
    errors = np.zeros(len(rows))
    for pub in sorted(set(pubs)):
        held = pubs == pub
        _, predicted, _ = _fit_per_device(p, ~held)
        errors[held] = predicted[held] / p.table.measured_s[held] - 1.0
    _, _, text = _fit_per_device(p, np.ones(len(rows), dtype=bool))
    return Outcome("derate per device", errors, text)


def report(rows: list[Measurement], outcomes: list[Outcome]) -> str:
    metrics = np.array([m.metric for m in rows])
    head = f"{'variant':20s} " + " ".join(f"{f:>11s}" for f in FAMILIES) + "  fitted on every row"
    lines = ["held-out (leave-one-source-out) median |error| by family", head]
    for o in outcomes:
        medians = [float(np.median(np.abs(o.errors[np.isin(metrics, fam)]))) for fam in
                   FAMILIES.values()]  # fmt: skip
        lines.append(f"{o.name:20s} " + " ".join(f"{m:>11.1%}" for m in medians) + f"  {o.fitted}")
    ttft = np.isin(metrics, FAMILIES["TTFT"])
    lines.append("")
    lines.append("TTFT rows, held-out error per variant:")
    for i in np.flatnonzero(ttft):
        lines.append(f"  {rows[i].id:6s} " + " ".join(f"{o.errors[i]:+7.1%}" for o in outcomes))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the text report")
    args = parser.parse_args(argv)
    rows = load_measurements()
    outcomes = [
        shared_derate(rows, fit_mod.DERATE_GRID, "shipped"),
        shared_derate(rows, WIDE_DERATE_GRID, "wide derate"),
        per_device_derate(rows),
    ]
    text = report(rows, outcomes)
    sys.stdout.write(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "inference_variants.txt").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
