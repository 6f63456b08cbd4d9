"""The training cost model against published measurements (``data/train_measurements.csv``).

The file holds the rows copied from the project's reference measurements with their source
keys (``id``, ``source``, ``locator``) and original columns, plus columns that say how each
row is read (all stated in the row, none fitted):

* ``system``: the system profile; ``arch_ref``: ``row`` (shape from the row's columns) or a
  reference model name where the row lacks shape details (MLA, MoE);
* ``stack``: the training software (a stack file, :mod:`cost_models.stacks`), whose facts
  apply; ``stated_facts``: only the facts the source itself states beyond its stack
  (``key=value; ...``, e.g. ``elementwise=fused`` for a run with ``torch.compile``), see
  :class:`cost_models.options.TrainOptions`; ``dtype``: the training precision;
* ``use_*``: the plan; ``auto`` where the source does not state a value (the planner
  picks the fastest that fits, as a tuned benchmark would);
* ``measured_kind`` and ``measured_value``: the figure and how it converts to tokens/s per
  device (``tflops_nar21``: NAR21 eq. 3 FLOPs, recompute included; ``tflops_model``:
  6 x active matmul + full attention; ``step_s``: ``gbs * seq / (time * devices)``;
  ``tokens_per_s_per_device``: as reported; ``activation_gib``: activation memory of the
  first stage, compared in GiB; ``peak_memory_gib``: the whole memory per device, compared
  with a reported peak);
* ``holdout``: 1 for rows never used to fit the calibration (reported as their own group).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cost_models.options import TrainOptions, parse_pairs
from cost_models.plan import ParallelPlan, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.plans import FixedValue
from cost_models.stacks import resolve_train
from cost_models.train.calibration import Calibration
from cost_models.train.memory import stored_activation_bytes
from cost_models.train.ops import StageShape
from cost_models.train.planner import plan_training
from cost_models.train.step import TrainCost, model_flops_per_token, train_cost
from hw_profiles.loader import load_system
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, qk_head_dim, total_params

__all__ = [
    "DATA_FILE",
    "PreparedRow",
    "TrainMeasurement",
    "load_train_measurements",
    "measured_tokens_per_s_per_device",
    "measurement_arch",
    "measurement_options",
    "predict_row",
    "prepare_row",
    "row_cost",
    "shipped_system",
    "summarize",
    "validate_training_rows",
]

DATA_FILE = Path(__file__).resolve().parent / "data" / "train_measurements.csv"
GIB = 2.0**30
_MEGATRON_2021 = ("NAR21", "KOR22")  # GPT with biases and learned positions


@dataclass(frozen=True, kw_only=True)
class TrainMeasurement:
    """One published training figure with what is needed to predict it."""

    id: str
    case: str
    source: str
    row: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.id} ({self.case})" if self.case else self.id


def load_train_measurements(path: Path = DATA_FILE) -> list[TrainMeasurement]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [TrainMeasurement(id=r["id"], case=r["case"], source=r["source"], row=r) for r in rows]


def measurement_arch(m: TrainMeasurement) -> Architecture:
    r = m.row
    if r["arch_ref"] != "row":
        return load_model(r["arch_ref"])
    old = m.source in _MEGATRON_2021
    return Architecture(
        name=r["model"],
        num_layers=int(r["layers"]),
        d_model=int(r["hidden"]),
        num_heads=int(r["heads"]),
        num_kv_heads=int(r["kv_heads"]),
        d_ff=int(r["ffn"]),
        vocab_size=int(r["vocab"]),
        ffn_activation=r["ffn_activation"],  # type: ignore[arg-type]
        norm=r["norm"],  # type: ignore[arg-type]
        tie_embeddings=r["tied"] == "1",
        bias=old,
        learned_positions=int(r["seq"]) if old else 0,
        head_dim=int(r.get("head_dim") or 0),
        parallel_block=r.get("parallel_block") == "1",
    )


def _fixed(r: dict[str, str]) -> dict[str, FixedValue]:
    fixed: dict[str, FixedValue] = {
        "tp": int(r["use_tp"]),
        "pp": int(r["use_pp"]),
        "dp": int(r["use_dp"]),
        "ep": int(r["use_ep"]),
        "cp": int(r["use_cp"]),
        "sequence_parallel": r["sp"] == "1",
        "zero": int(r["zero"]),
        "global_batch": int(r["use_gbs"]),
    }
    if r["use_vpp"] != "auto":
        fixed["vpp"] = int(r["use_vpp"])
    if r["use_mbs"] != "auto":
        fixed["micro_batch"] = int(r["use_mbs"])
    if r["use_recompute"] != "auto":
        fixed["recompute"] = r["use_recompute"]
    if r.get("use_dp_replicate"):  # hybrid sharding (empty: one replica)
        fixed["dp_replicate"] = int(r["use_dp_replicate"])
    return fixed


def measured_tokens_per_s_per_device(m: TrainMeasurement, arch: Architecture) -> float:
    """The row's figure as tokens/s per device, by the row's own FLOP convention."""
    r = m.row
    kind, value = r["measured_kind"], float(r["measured_value"])
    seq, n = int(r["seq"]), int(r["n_accel"])
    if kind == "tflops_nar21":  # NAR21 eq. 3: 96 B s l h^2 (1 + s/6h + V/16lh) per step
        layers, h, v = arch.num_layers, arch.d_model, arch.vocab_size
        per_token = 96.0 * layers * h * h * (1.0 + seq / (6.0 * h) + v / (16.0 * layers * h))
        return value * 1e12 / per_token
    if kind == "tflops_palm_b":  # PaLM Appendix B: 6 N + 12 L H Q T / 2 (causal) per token
        b = ArchBatch.from_architectures([arch])
        attention = 6.0 * arch.num_layers * arch.num_heads * float(qk_head_dim(b)[0]) * seq
        return value * 1e12 / (6.0 * float(total_params(b)[0]) + attention)
    if kind == "tflops_model":
        b = ArchBatch.from_architectures([arch])
        return value * 1e12 / float(model_flops_per_token(b, seq_len=seq)[0])
    if kind == "step_s":
        return int(r["use_gbs"]) * seq / (value * n)
    if kind == "tokens_per_s_per_device":
        return value
    raise ValueError(f"{m.label}: measured_kind: unknown {kind!r}")


def stated_facts(m: TrainMeasurement) -> dict[str, str]:
    """The software facts the row's source states beyond its stack (``stated_facts``:
    ``key=value; key=value``)."""
    pairs = [p.strip() for p in m.row.get("stated_facts", "").split(";") if p.strip()]
    return parse_pairs(pairs, flag=f"{m.label}: stated_facts")


def measurement_options(m: TrainMeasurement, *, calibrated: bool = True) -> TrainOptions:
    """The row's stack with the facts its source states on top."""
    where = f"{m.label}: stated_facts"
    _, options = resolve_train(
        m.row["stack"], stated_facts(m), flag=f"{m.label}: stack", where=where
    )
    return options if calibrated else replace(options, calibrated=False)


@dataclass(frozen=True, kw_only=True)
class PreparedRow:
    """A measurement with its model, system, workload, options and chosen plan."""

    measurement: TrainMeasurement
    arch: Architecture
    system: System
    workload: TrainWorkload
    options: TrainOptions
    plan: ParallelPlan


@cache
def shipped_system(name: str, num_devices: int) -> System:
    """A shipped system profile scaled to ``num_devices``, parsed once per process: the
    profiles do not change while it runs, and validation and calibration look the same few
    up row after row (and grid value after grid value)."""
    return load_system(name, num_devices)


def prepare_row(m: TrainMeasurement, *, calibration: Calibration | None = None) -> PreparedRow:
    """Resolve a row; ``auto`` plan fields are chosen by the planner (under ``calibration``,
    default the shipped one)."""
    r = m.row
    arch = measurement_arch(m)
    system = shipped_system(r["system"], int(r["n_accel"]))
    workload = TrainWorkload(seq_len=int(r["seq"]), dtype=r["dtype"])  # type: ignore[arg-type]
    options = measurement_options(m)
    choice = plan_training(
        arch, system, workload, fixed=_fixed(r), top_k=1, options=options, calibration=calibration
    )
    return PreparedRow(
        measurement=m,
        arch=arch,
        system=system,
        workload=workload,
        options=options,
        plan=choice.best,
    )


def row_cost(p: PreparedRow, *, calibration: Calibration | None = None) -> TrainCost:
    return train_cost(
        ArchBatch.from_architectures([p.arch]),
        PlanBatch.from_plans([p.plan]),
        system=p.system,
        workload=p.workload,
        options=p.options,
        calibration=calibration,
    )


def stored_activations_gib(p: PreparedRow) -> float:
    """Activations kept between forward and backward (what KOR22's Figure 1 counts), GiB."""
    arch, plan = ArchBatch.from_architectures([p.arch]), PlanBatch.from_plans([p.plan])
    shape = StageShape.of(arch, plan, seq_len=p.workload.seq_len)
    stored = stored_activation_bytes(arch, plan, shape, options=p.options, dtype=p.workload.dtype)
    return float(stored[0]) / GIB


def predict_row(m: TrainMeasurement, *, calibration: Calibration | None = None) -> dict[str, Any]:
    """Measured vs predicted for one row (tokens/s per device, or activation GiB)."""
    prepared = prepare_row(m, calibration=calibration)
    r, arch, plan = m.row, prepared.arch, prepared.plan
    cost = row_cost(prepared, calibration=calibration)
    if r["measured_kind"] == "activation_gib":
        measured = float(r["measured_value"])
        predicted = stored_activations_gib(prepared)
        metric, unit = "activation memory", "GiB"
    elif r["measured_kind"] == "peak_memory_gib":
        measured = float(r["measured_value"])
        predicted = float(cost.memory_per_device_bytes[0]) / GIB
        metric, unit = "peak memory", "GiB"
    else:
        measured = measured_tokens_per_s_per_device(m, arch)
        predicted = float(cost.tokens_per_s_per_device[0])
        metric, unit = "tokens/s per device", "tok/s"
    if r.get("holdout") == "1":  # never used to fit the calibration
        metric = f"{metric} (held out)"
    return {
        "id": m.label,
        "kind": "train",
        "source": f"{m.source} {r['locator']}",
        "stack": r["stack"],
        "publication": m.source,
        "metric": metric,
        "unit": unit,
        "measured": measured,
        "predicted": predicted,
        "error": predicted / measured - 1.0,
        "model": r["model"],
        "hardware": f"{r['n_accel']}x {r['system']}",
        "plan": (
            f"tp{plan.tp} pp{plan.pp} dp{plan.dp} ep{plan.ep} cp{plan.cp} vpp{plan.vpp} "
            f"mb{plan.micro_batch} z{plan.zero} {plan.recompute}{' sp' if plan.sequence_parallel else ''}"
            + (f" x{plan.dp_replicate} replicas" if plan.dp_replicate > 1 else "")
        ),
        "mfu": float(cost.mfu[0]),
        "fits": bool(cost.fits[0]),
    }


def validate_training_rows(
    path: Path = DATA_FILE, *, include_memory: bool = True, calibration: Calibration | None = None
) -> list[dict[str, Any]]:
    """Every row of the training measurement file, measured vs predicted."""
    rows = [predict_row(m, calibration=calibration) for m in load_train_measurements(path)]
    return rows if include_memory else [r for r in rows if r["unit"] != "GiB"]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst absolute relative error over ``rows``."""
    if not rows:
        return {
            "rows": 0,
            "median_abs_error": float("nan"),
            "worst_abs_error": float("nan"),
            "worst_id": "",
        }
    errors = np.abs(np.array([r["error"] for r in rows], dtype=np.float64))
    worst = int(np.argmax(errors))
    return {
        "rows": len(rows),
        "median_abs_error": float(np.median(errors)),
        "worst_abs_error": float(errors[worst]),
        "worst_id": rows[worst]["id"],
    }
