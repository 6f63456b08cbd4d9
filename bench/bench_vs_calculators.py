"""The cost models beside simple calculators on the published rows, all under
leave-one-source-out (each publication predicted by parameters fitted without it).

Training (tokens/s per device):

1. **llm-analysis 0.2.2** (``bench/llm_analysis_adapter.py``): the one-constant calculator
   issue 14 measured this project against, with each row's model, plan (the plan ``nas
   validate`` uses: the source's values, the planner's where the source states none),
   precision, recomputation, ZeRO stage and attention kernel. Its ``flops_efficiency`` once at
   0.5 (its ``constant.py``: "~0.5 for Megatron-LM"; the setting issue 14 used) and once
   fitted leave-one-source-out on 0.20-1.00; every other setting at its default.
2. **Constant MFU** (:func:`cost_models.validation.baselines.constant_mfu_tokens_per_s`):
   tokens/s = MFU x peak / model FLOPs per token, MFU fitted leave-one-source-out; every row.

Inference (TTFT, TPOT, end-to-end): llm-analysis at its defaults (``flops_efficiency`` and
``hbm_memory_efficiency`` 1: a roofline) and with both fitted leave-one-source-out on a grid
(each 0.10-1.00 in steps of 0.05: wide, so that the efficiencies can stand in for the
per-step overheads it does not model).

Needs llm-analysis, installed without its dependencies:
``pip install --no-deps llm-analysis==0.2.2 && pip install 'fire>=0.5,<0.6'``.

Run: ``python bench/bench_vs_calculators.py [--out bench/results]`` (under a minute).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cost_models.validation.baselines import (
    MFU_GRID,
    constant_mfu_tokens_per_s,
    held_out_errors_on_grid,
)
from cost_models.validation.holdout import ROW_BOUND, held_out_errors
from cost_models.validation.inference import (
    load_measurements,
    measurement_system,
    publication,
    validate_inference_rows,
)
from cost_models.validation.train import (
    load_train_measurements,
    measured_tokens_per_s_per_device,
    prepare_row,
    validate_training_rows,
)

try:
    import llm_analysis_adapter as la
except ImportError as missing:  # pragma: no cover - reported by main()
    la = None
    MISSING = str(missing)

EFFICIENCY_GRID = np.round(np.arange(0.20, 1.0001, 0.01), 2)
FIXED_EFFICIENCY = 0.5
INFERENCE_GRID = [
    (float(f), float(h))
    for f in np.round(np.arange(0.10, 1.0001, 0.05), 2)
    for h in np.round(np.arange(0.10, 1.0001, 0.05), 2)
]
INFERENCE_METRICS = ("ttft", "ttft_loaded", "tpot", "e2e")
METRIC_NAMES = {"ttft": "TTFT", "ttft_loaded": "TTFT", "tpot": "TPOT", "e2e": "end-to-end"}


@dataclass(frozen=True)
class Compared:
    """Rows of one family: id, publication, measured, this project's held-out error, and each
    calculator's held-out error (NaN where it cannot express the row), why not."""

    ids: list[str]
    pubs: list[str]
    measured: np.ndarray
    ours: np.ndarray
    others: dict[str, np.ndarray]
    left_out: list[str]


def compare_training() -> Compared:
    shown = validate_training_rows(include_memory=False)
    errors = dict(zip([r["id"] for r in shown], held_out_errors(shown), strict=True))
    rows = [prepare_row(m) for m in load_train_measurements() if m.label in errors]
    ids = [p.measurement.label for p in rows]
    pubs = [p.measurement.source for p in rows]
    measured = np.array([measured_tokens_per_s_per_device(p.measurement, p.arch) for p in rows])
    mfu_table = np.array([constant_mfu_tokens_per_s(p, MFU_GRID) for p in rows])
    left_out = [la.why_not_expressible(p.arch, p.system, cp=p.plan.cp) or "" for p in rows]
    common = [i for i, why in enumerate(left_out) if not why]
    grid = np.concatenate([[FIXED_EFFICIENCY], EFFICIENCY_GRID])
    table = np.array([la.training_tokens_per_s(rows[i], grid) for i in common])
    fixed, fitted = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    fixed[common] = table[:, 0] / measured[common] - 1.0
    fitted[common] = held_out_errors_on_grid(table[:, 1:], measured[common], [pubs[i] for i in common])  # fmt: skip
    return Compared(ids, pubs, measured, np.array([errors[i] for i in ids]), {
        "llm-analysis 0.2.2, flops_efficiency 0.5": fixed,
        "llm-analysis 0.2.2, flops_efficiency fitted": fitted,
        "constant MFU, fitted": held_out_errors_on_grid(mfu_table, measured, pubs),
    }, left_out)  # fmt: skip


def compare_inference() -> Compared:
    shown = [dict(r, kind="inference") for r in validate_inference_rows()]
    errors = dict(zip([r["id"] for r in shown], held_out_errors(shown), strict=True))
    rows = [m for m in load_measurements() if m.metric in INFERENCE_METRICS]
    ids, pubs = [m.id for m in rows], [publication(m.source) for m in rows]
    measured = np.array([m.measured_s for m in rows])
    left_out, table = [], np.full((len(rows), len(INFERENCE_GRID)), np.nan)
    for i, m in enumerate(rows):
        system = measurement_system(m)
        why = la.why_not_expressible(m.arch, system)
        if why is None:
            try:
                table[i] = la.inference_latency_s(
                    m.arch, system, tp=m.tp, batch_per_replica=-(-m.batch // (m.n_dev // m.tp)),
                    in_len=m.in_len, out_len=m.out_len, weight_dtype=m.weight_dtype,
                    kv_dtype=m.kv_dtype, metric=m.metric, pairs=INFERENCE_GRID,
                )  # fmt: skip
            except AssertionError as refused:  # its memory checks
                why = f"llm-analysis refuses: {str(refused)[:60]}"
        left_out.append(why or "")
    return _inference_compared(ids, pubs, measured, errors, table, left_out)


def _inference_compared(
    ids: list[str],
    pubs: list[str],
    measured: np.ndarray,
    errors: dict[str, float],
    table: np.ndarray,
    left_out: list[str],
) -> Compared:
    common = [i for i, why in enumerate(left_out) if not why]
    roofline, fitted = np.full(len(ids), np.nan), np.full(len(ids), np.nan)
    defaults = INFERENCE_GRID.index((1.0, 1.0))
    roofline[common] = table[common, defaults] / measured[common] - 1.0
    fitted[common] = held_out_errors_on_grid(table[common], measured[common], [pubs[i] for i in common])  # fmt: skip
    return Compared(ids, pubs, measured, np.array([errors[i] for i in ids]), {
        "llm-analysis 0.2.2, defaults (1.0, 1.0)": roofline,
        "llm-analysis 0.2.2, both efficiencies fitted": fitted,
    }, left_out)  # fmt: skip


def _line(name: str, errors: np.ndarray, pubs: list[str]) -> str:
    a = np.abs(errors)
    by_pub = [float(np.median(a[np.array(pubs) == q])) for q in sorted(set(pubs))]
    within = int(np.sum(a <= ROW_BOUND))
    return f"{name:46s} {np.median(a):7.1%} {np.median(by_pub):9.1%} {np.max(a):8.1%} {within:4d}/{len(a)}"  # fmt: skip


def print_table(title: str, c: Compared, picked: list[int], names: list[str]) -> None:
    pubs = [c.pubs[i] for i in picked]
    print(f"\n{title}: {len(picked)} rows ({len(set(pubs))} publications); "
          "leave-one-source-out |error|")  # fmt: skip
    print(f"{'':46s} {'median':>7s} {'of pubs':>9s} {'worst':>8s} {'<=35%':>9s}")
    print(_line("this project (nas validate)", c.ours[picked], pubs))
    for name in names:
        print(_line(name, c.others[name][picked], pubs))


def report(family: str, c: Compared, metrics: list[str] | None = None) -> None:
    """The rows every calculator expresses, then (where a calculator covers all) every row."""
    every = list(range(len(c.ids)))
    full = [n for n, e in c.others.items() if not np.isnan(e).any()]
    for metric in sorted(set(metrics)) if metrics else [None]:
        rows = [i for i in every if metrics is None or metrics[i] == metric]
        common = [i for i in rows if not c.left_out[i]]
        label = family if metric is None else f"{family} {metric}"
        print_table(f"{label}, rows every calculator can express", c, common, list(c.others))
        if full and len(common) < len(rows):
            print_table(f"{label}, every row", c, rows, full)


def write_csv(path: Path, family: str, c: Compared) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["family", "id", "publication", "measured", "calculator", "held_out_error", "left_out_because"])  # fmt: skip
        for i, row_id in enumerate(c.ids):
            errors = {"this project": c.ours[i], **{k: v[i] for k, v in c.others.items()}}
            for name, err in errors.items():
                shown = "" if np.isnan(err) else f"{err:+.4f}"
                why = c.left_out[i] if name.startswith("llm-analysis") else ""
                w.writerow([family, row_id, c.pubs[i], f"{c.measured[i]:.6g}", name, shown, why])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    if la is None:
        print(f"llm-analysis is needed ({MISSING}): pip install --no-deps "
              "llm-analysis==0.2.2 && pip install 'fire>=0.5,<0.6'", file=sys.stderr)  # fmt: skip
        return 2
    out = args.out / "calculators_side_by_side.csv"
    out.unlink(missing_ok=True)
    train = compare_training()
    report("Training tokens/s per device", train)
    write_csv(out, "training tokens/s per device", train)
    inference = compare_inference()
    metrics = [METRIC_NAMES[m.metric] for m in load_measurements() if m.metric in INFERENCE_METRICS]
    report("Inference", inference, metrics)
    write_csv(out, "inference", inference)
    print(f"\nper row: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
