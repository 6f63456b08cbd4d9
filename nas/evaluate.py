"""From a candidate to one flat trial record: architecture, hardware, cost and accuracy.

The record is a flat ``{name: number | str | bool}`` mapping; objectives and constraints
name its keys and nothing is special-cased. Nested parts of the cost report are flattened
(:func:`flatten_report`): ``time_breakdown_s.compute`` -> ``time_compute_s``,
``memory_breakdown_bytes.weights`` -> ``memory_weights_bytes``, ``plan.tp`` -> ``plan_tp``,
any other ``a.b`` -> ``a_b``. Training records add ``tokens`` (from the token count or
the GPU-hour budget), ``train_hours``, ``gpu_hours``, ``cost_usd`` and ``energy_kwh``.
Serving records add the aliases ``prefill_ttft_s`` and ``decode_tpot_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cost_models.plan import InferenceWorkload, ParallelPlan, TrainWorkload
from hw_profiles.types import System
from nas.experiment import Constraint, Experiment, ServeWorkload
from nas.search.base import Objective, TrialFailed, TrialPruned
from nas.search.hardware import HardwarePoint, check_knobs, hardware_grid, suggest_hardware
from search_spaces.architecture import Architecture
from search_spaces.counts import model_counts

__all__ = [
    "Candidate",
    "ExperimentProblem",
    "constraint_frame",
    "evaluate_candidate",
    "flatten_report",
    "load_systems",
]

_ARCH_FIELDS = (
    "num_layers",
    "d_model",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "d_ff",
    "vocab_size",
)
_MOE_FIELDS = ("num_experts", "top_k", "d_expert", "num_shared_experts", "first_dense_layers")
_SKIP_KEYS = frozenset({"workload", "mode", "sources", "notes", "conventions", "model"})


def flatten_report(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested cost report into record keys (rules in the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in _SKIP_KEYS:
            continue
        if isinstance(value, Mapping):
            if key.endswith("time_breakdown_s"):
                head = key[: -len("time_breakdown_s")]
                out.update({f"{prefix}{head}time_{k}_s": v for k, v in value.items() if _scalar(v)})
            elif key.endswith("memory_breakdown_bytes"):
                head = key[: -len("memory_breakdown_bytes")]
                out.update(
                    {f"{prefix}{head}memory_{k}_bytes": v for k, v in value.items() if _scalar(v)}
                )
            else:
                out.update(flatten_report(value, prefix=f"{prefix}{key}_"))
        elif _scalar(value):
            out[f"{prefix}{key}"] = value
    return out


def _scalar(value: object) -> bool:
    return isinstance(value, (int, float, str, bool)) or (
        hasattr(value, "item") and getattr(value, "ndim", 1) == 0
    )


def load_systems(experiment: Experiment) -> dict[str, System]:
    from hw_profiles.loader import load_system

    return {
        name: load_system(name, num_devices=experiment.hardware.num_devices)
        for name in experiment.hardware.systems
    }


def arch_record(arch: Architecture, *, seq_len: int) -> dict[str, Any]:
    """Architecture fields and derived counts of one candidate."""
    out: dict[str, Any] = {f: getattr(arch, f) for f in _ARCH_FIELDS}
    out["ffn_activation"] = arch.ffn_activation
    moe = arch.moe
    for f in _MOE_FIELDS:
        out[f] = getattr(moe, f) if moe is not None else 0
    out["num_moe_layers"] = arch.num_moe_layers
    counts = model_counts(arch, seq_len=seq_len)
    out["params_total"] = counts.params_total
    out["params_active"] = counts.params_active
    out["params_embedding"] = counts.params_embedding
    out["flops_per_token"] = counts.flops_per_token
    out["kv_cache_bytes_per_token"] = counts.kv_cache_bytes_per_token
    return out


@dataclass(frozen=True, kw_only=True)
class Candidate:
    arch: Architecture
    hardware: HardwarePoint
    plan: Mapping[str, int] = field(default_factory=dict)  # fixed or searched degrees


class ExperimentProblem:
    """The :class:`nas.search.base.Problem` of an experiment (built again in each worker)."""

    def __init__(self, experiment: Experiment) -> None:
        from nas.evaluators import get_evaluator
        from search_spaces.spaces import SearchSpace, get_space, load_space

        self.experiment = experiment
        overrides = experiment.space_overrides or None
        self.space: SearchSpace
        if experiment.space.endswith((".yaml", ".yml")):
            self.space = load_space(experiment.space, overrides)
        else:
            self.space = get_space(experiment.space, overrides)
        self.systems = load_systems(experiment)
        check_knobs(experiment.hardware, self.systems)
        self.evaluator = get_evaluator(experiment.accuracy.evaluator, experiment.accuracy.settings)
        self.objectives: tuple[Objective, ...] = tuple(
            Objective(metric=m, direction=d) for m, d in experiment.objectives.items()
        )
        self.constraints: tuple[Constraint, ...] = experiment.parsed_constraints()
        self._check_plan()

    def _check_plan(self) -> None:
        n = max(s.num_devices for s in self.systems.values())
        degrees = {**self.experiment.plan.fixed}
        for name, value in degrees.items():
            if name in ("tp", "pp", "dp", "cp") and n % value:
                raise ValueError(f"plan.fixed.{name}: {value} does not divide num_devices {n}")

    # --- Problem protocol -------------------------------------------------------------
    def suggest(self, trial: Any) -> Candidate:
        arch = self.space.suggest(trial)
        hardware = suggest_hardware(trial, self.experiment.hardware, self.systems)
        spec = self.experiment.plan
        plan: dict[str, int] = {str(k): v for k, v in spec.fixed.items()}
        for name, choices in spec.searched.items():
            plan[name] = int(trial.suggest_categorical(f"plan_{name}", list(choices)))
        return Candidate(arch=arch, hardware=hardware, plan=plan)

    def evaluate(self, candidate: Candidate) -> dict[str, Any]:
        from nas.evaluators import EvaluationFailed, Pruned

        try:
            return evaluate_candidate(self, candidate)
        except Pruned as exc:
            raise TrialPruned(str(exc)) from exc
        except EvaluationFailed as exc:
            raise TrialFailed(exc.reason) from exc

    def device_memory_bytes(self, record: Mapping[str, Any]) -> float:
        return float(record["device_memory_bytes"])

    # --- references -------------------------------------------------------------------
    def evaluate_references(self, names: Sequence[str] | None) -> pd.DataFrame:
        """Catalogue models on every base system (knobs at 1), one row each; the plan is the
        experiment's fixed degrees, else the planner's choice."""
        from search_spaces.catalogue import list_models, load_model

        rows = []
        for name in names if names is not None else list_models():
            arch = load_model(name)
            for system_name, system in self.systems.items():
                point = HardwarePoint(
                    system=system, base_name=system_name, scales={}, cost_index=1.0
                )
                row: dict[str, Any] = {"name": name}
                try:
                    fixed = {str(k): v for k, v in self.experiment.plan.fixed.items()}
                    cand = Candidate(arch=arch, hardware=point, plan=fixed)
                    row.update(evaluate_candidate(self, cand))
                    row["fail_reason"] = ""
                except Exception as exc:  # a reference that cannot run here is listed as such
                    row.update(
                        {"system": system_name, "fail_reason": f"{type(exc).__name__}: {exc}"}
                    )
                rows.append(row)
        table: pd.DataFrame = pd.DataFrame(rows)
        return table

    def evaluate_grid(
        self, *, max_candidates: int, on_chunk: Callable[[int, int], None] | None = None
    ) -> pd.DataFrame:
        """Every candidate of the space on every hardware point (exhaustive backend);
        ``on_chunk(done, total)`` reports progress."""
        from nas.search.grid_eval import evaluate_grid

        return evaluate_grid(self, max_candidates=max_candidates, on_chunk=on_chunk)

    def hardware_points(self) -> list[HardwarePoint]:
        return hardware_grid(self.experiment.hardware, self.systems)


def _plan_args(candidate: Candidate, spec_recompute: str | None) -> dict[str, Any]:
    fixed: dict[str, Any] = dict(candidate.plan)
    if spec_recompute is not None:
        fixed["recompute"] = spec_recompute
    return fixed


def evaluate_candidate(problem: ExperimentProblem, candidate: Candidate) -> dict[str, Any]:
    """The flat trial record of one candidate (cost model, then accuracy)."""
    exp = problem.experiment
    wl = exp.workload
    system = candidate.hardware.system
    record: dict[str, Any] = {}
    record.update(candidate.hardware.metrics())
    fixed = _plan_args(candidate, exp.plan.recompute)
    if isinstance(wl, ServeWorkload):
        workload: TrainWorkload | InferenceWorkload = InferenceWorkload(
            batch=wl.batch,
            prompt_len=wl.prompt_len,
            gen_len=wl.gen_len,
            weight_dtype=wl.weight_dtype,
            kv_dtype=wl.kv_dtype,
        )
        seq_len = wl.prompt_len + wl.gen_len
    else:
        workload = TrainWorkload(seq_len=wl.seq_len, dtype=wl.dtype)
        fixed.setdefault("global_batch", wl.global_batch_tokens // wl.seq_len)
        seq_len = wl.seq_len
    record.update(arch_record(candidate.arch, seq_len=seq_len))
    report = _estimate(
        candidate.arch,
        system,
        workload,
        fixed,
        framework=_framework(wl),
        memory_headroom=exp.hardware.memory_headroom,
    )
    cost = flatten_report(report)
    record.update({k: v for k, v in cost.items() if k not in ("device_memory_bytes",)})
    if isinstance(wl, ServeWorkload):
        record["prefill_ttft_s"] = record.get("ttft_s", math.nan)
        record["decode_tpot_s"] = record.get("tpot_s", math.nan)
        acc = exp.accuracy
        tokens = acc.tokens or acc.tokens_per_param * float(record["params_total"])
    else:
        tokens = _train_tokens(record, wl.tokens, wl.budget_gpu_hours, system)
    record["tokens"] = tokens
    for key, value in problem.evaluator.evaluate(candidate.arch, tokens=tokens).items():
        # the evaluator's own measurements (a proxy run's tokens_per_s) must not hide the
        # cost model's: clashing names get an ``accuracy_`` prefix
        record[key if key not in record or key == "tokens" else f"accuracy_{key}"] = value
    return record


def _framework(wl: Any) -> Mapping[str, Any]:
    return dict(getattr(wl, "framework", {}) or {})


def _estimate(
    arch: Architecture,
    system: System,
    workload: TrainWorkload | InferenceWorkload,
    fixed: Mapping[str, Any],
    *,
    framework: Mapping[str, Any],
    memory_headroom: float,
) -> dict[str, Any]:
    """The ``nas estimate --json`` object (decode mode for serving: it carries the prefill
    figures too); degrees not in ``fixed`` are chosen by the planner; ``framework`` is the
    training workload's software facts (:func:`cost_models.framework.train_options`)."""
    from cost_models.estimate import estimate
    from cost_models.framework import train_options

    degrees = {k: int(v) for k, v in fixed.items() if k in ("tp", "pp", "ep")}
    if isinstance(workload, InferenceWorkload) and degrees:
        # the inference planner takes a whole plan: data parallelism fills the devices
        tp, pp = degrees.get("tp", 1), degrees.get("pp", 1)
        if system.num_devices % (tp * pp):
            raise ValueError(f"plan: tp*pp ({tp * pp}) must divide {system.num_devices} devices")
        dp = system.num_devices // (tp * pp)
        plan = ParallelPlan(tp=tp, pp=pp, dp=dp, ep=degrees.get("ep", 1), global_batch=dp)
        return dict(estimate(arch, system, workload, plan=plan))
    options = train_options(framework, where="workload.framework")
    return dict(
        estimate(
            arch,
            system,
            workload,
            plan=None,
            fixed=dict(fixed) or None,
            options=options,
            memory_headroom=memory_headroom,
        )
    )


def _train_tokens(
    record: dict[str, Any], tokens: float | None, budget_gpu_hours: float | None, system: System
) -> float:
    """Tokens seen, and the time, device-hours, money and energy to see them."""
    from nas.evaluators import tokens_from_budget

    per_device = float(record["tokens_per_s_per_device"])
    if tokens is None:
        assert budget_gpu_hours is not None
        tokens = float(
            tokens_from_budget(
                budget_gpu_hours=budget_gpu_hours, tokens_per_s_per_device=per_device
            )[0]
        )
    rate = per_device * system.num_devices
    hours = tokens / rate / 3600.0 if rate > 0 else math.inf
    record["train_hours"] = hours
    record["gpu_hours"] = hours * system.num_devices
    record["cost_usd"] = hours * float(record.get("price_per_hour_usd", math.nan))
    record["energy_kwh"] = hours * float(record["power_w"]) / 1000.0
    return tokens


def constraint_frame(problem: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Constraint values (<= 0 satisfied) for every row of a record table, column-wise."""
    out = {}
    for i, c in enumerate(problem.constraints):
        out[f"c{i}"] = _constraint_column(c, frame)
    table: pd.DataFrame = pd.DataFrame(out, index=frame.index)
    return table


def _constraint_column(c: Constraint, frame: pd.DataFrame) -> pd.Series:
    if c.metric not in frame.columns:
        raise ValueError(f"constraints.{c.metric}: not a metric of the trial record")
    value = frame[c.metric].astype(float)
    if c.op == "==":
        return (value != c.bound).astype(float)
    bound = c.bound * (frame["device_memory_bytes"].astype(float) if c.relative_to else 1.0)
    scale = (
        bound.abs().where(bound != 0, 1.0) if isinstance(bound, pd.Series) else (abs(bound) or 1.0)
    )
    excess = (value - bound) if c.op == "<=" else (bound - value)
    return (excess / scale).fillna(1.0)
