"""Load run directories into one table for the dashboard, tolerant of missing pieces.

A run directory (written by ``nas run``) holds ``summary.json``, ``experiment.yaml``,
``trials.parquet`` (one row per trial, metrics flattened), optionally ``references.parquet``
(reference models under the same workload) and ``pareto.csv``. Columns are discovered by
name and prefix, so new metrics and parameters show up without code changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nas.search.pareto import non_dominated, to_minimisation

Direction = Literal["min", "max"]

TRIAL_COLUMNS = ("number", "trial", "trial_number", "trial_id")
SYSTEM_COLUMNS = ("system", "system_name", "hardware")
REFERENCE_NAME_COLUMNS = ("name", "model", "reference", "model_name")
PARAM_PREFIXES = ("param_", "params_", "arch_")  # nas.runs writes param_*
PLAN_PREFIX = "plan_"
# Totals that share the breakdown prefixes but are not parts of it.
_NOT_PARTS = {"per_device", "total", "budget", "device", "capacity"}
# Architecture fields in the order a reader expects them, with short labels for hover text.
ARCH_FIELDS: tuple[tuple[str, str], ...] = (
    ("num_layers", "layers"),
    ("d_model", "d_model"),
    ("num_heads", "heads"),
    ("num_kv_heads", "kv heads"),
    ("head_dim", "head_dim"),
    ("d_ff", "d_ff"),
    ("ffn_activation", "ffn"),
    ("num_experts", "experts"),
    ("top_k", "top-k"),
    ("d_expert", "d_expert"),
    ("num_shared_experts", "shared experts"),
    ("kv_lora_rank", "kv_lora_rank"),
    ("vocab_size", "vocab"),
)
# Headline metrics offered on the 2-D axes besides the objectives (when present).
AXIS_METRICS = (
    "loss",
    "step_time_s",
    "tokens_per_s",
    "mfu",
    "memory_per_device_bytes",
    "ttft_s",
    "tpot_s",
    "decode_tpot_s",
    "total_params",
    "active_params",
    "params_total",
    "params_active",
    "cost_usd",
    "gpu_hours",
)


class DashboardError(ValueError):
    """A run directory the dashboard cannot use; the message names the file and field."""


@dataclass(frozen=True, kw_only=True)
class Objective:
    """One objective of the search: a trial-record column and whether to minimise it."""

    name: str
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise DashboardError(f"objective {self.name!r}: direction must be min or max")


@dataclass(frozen=True, kw_only=True)
class Run:
    """One loaded run: completed trials (plus ``group`` and ``on_front`` columns)."""

    name: str
    run_dir: Path
    objectives: tuple[Objective, ...]
    trials: pd.DataFrame
    references: pd.DataFrame
    summary: Mapping[str, Any] = field(default_factory=dict)
    experiment: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.objectives:
            raise DashboardError(f"{self.run_dir}: no objectives")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    from nas.rundir import RunFileError, read_json_object

    try:
        return read_json_object(path)
    except RunFileError as exc:
        raise DashboardError(str(exc)) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):  # pyarrow's errors for a truncated or foreign file
        raise DashboardError(f"{path}: damaged (not a readable parquet table)") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    from nas.safe_yaml import YamlFileError, load_yaml_file

    try:
        data = load_yaml_file(path)
    except YamlFileError as exc:
        raise DashboardError(str(exc)) from None
    return data if isinstance(data, dict) else {}


def parse_objectives(raw: object, *, source: str) -> tuple[Objective, ...]:
    """Objectives from ``{name: min|max}``, ``[{name, direction}]`` or ``[name, ...]`` (min)."""
    items: list[tuple[str, str]] = []
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            direction = value.get("direction") if isinstance(value, Mapping) else value
            items.append((str(key), str(direction)))
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        for entry in raw:
            if isinstance(entry, Mapping):
                items.append((str(entry.get("name")), str(entry.get("direction", "min"))))
            else:
                items.append((str(entry), "min"))
    out = []
    for name, direction in items:
        if direction not in ("min", "max"):
            raise DashboardError(f"{source}: objective {name!r} direction must be min or max")
        out.append(Objective(name=name, direction="max" if direction == "max" else "min"))
    return tuple(out)


def first_column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of ``names`` that is a column of ``frame``."""
    return next((n for n in names if n in frame.columns), None)


def param_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Searched architecture parameters: display name -> column (prefixed or bare)."""
    found: dict[str, str] = {}
    for col in frame.columns:
        for prefix in PARAM_PREFIXES:
            name = col[len(prefix) :]
            # plan degrees searched as parameters belong to the plan, not the architecture
            if (
                col.startswith(prefix)
                and name not in ("total", "active", "embedding")
                and not name.startswith(PLAN_PREFIX)
            ):
                found.setdefault(name, col)
    for name, _ in ARCH_FIELDS:
        if name in frame.columns:
            found.setdefault(name, name)
    known = [n for n, _ in ARCH_FIELDS if n in found]
    return {n: found[n] for n in known + sorted(set(found) - set(known))}


def plan_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Parallel-plan degrees: ``tp`` -> ``plan_tp`` etc."""
    return {c[len(PLAN_PREFIX) :]: c for c in frame.columns if c.startswith(PLAN_PREFIX)}


_BREAKDOWN = {
    "time": re.compile(r"^(?:([a-z]+)_)?time_([a-z0-9_]+)_s$"),
    "memory": re.compile(r"^(?:([a-z]+)_)?memory_([a-z0-9_]+)_bytes$"),
}


def breakdown_families(
    frame: pd.DataFrame, kind: Literal["time", "memory"]
) -> dict[str, dict[str, str]]:
    """Breakdowns by family: ``""`` for ``time_<part>_s`` / ``memory_<part>_bytes``, and e.g.
    ``"prefill"``, ``"decode"`` for ``prefill_time_<part>_s``; part -> column. Families whose
    values are all zero or missing are left out."""
    out: dict[str, dict[str, str]] = {}
    for col in frame.columns:
        match = _BREAKDOWN[kind].match(str(col))
        if match and match.group(2) not in _NOT_PARTS and _is_number(frame[col]):
            out.setdefault(match.group(1) or "", {})[match.group(2)] = col
    return {
        family: parts
        for family, parts in out.items()
        if frame[list(parts.values())].fillna(0).to_numpy(dtype=np.float64).any()
    }


def breakdown_columns(frame: pd.DataFrame, kind: Literal["time", "memory"]) -> dict[str, str]:
    """Parts of the unprefixed step-time or memory breakdown (empty when absent)."""
    return breakdown_families(frame, kind).get("", {})


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    if "state" in frame.columns:
        state = frame["state"].astype(str).str.upper().str.replace("TRIALSTATE.", "")
        frame = frame[state == "COMPLETE"]
    return frame


def _mark_front(frame: pd.DataFrame, objectives: Sequence[Objective]) -> pd.Series[bool]:
    """Per group, the non-dominated feasible trials (objectives minimised after sign flip)."""
    on_front: pd.Series[bool] = pd.Series(False, index=frame.index)
    feasible = (
        frame["feasible"].fillna(False).astype(bool)
        if "feasible" in frame.columns
        else pd.Series(True, index=frame.index)
    )
    names = [o.name for o in objectives]
    dirs = [o.direction for o in objectives]
    for _, sub in frame[feasible].groupby("group", sort=False):
        values = to_minimisation(sub[names].to_numpy(dtype=np.float64), dirs)
        on_front.loc[sub.index[non_dominated(values)]] = True
    return on_front


def load_run(run_dir: Path, *, name: str | None = None) -> Run:
    """Read one run directory; raise :class:`DashboardError` naming the file when unusable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DashboardError(f"{run_dir}: not a run directory (no such directory)")
    trials_path = run_dir / "trials.parquet"
    if not trials_path.is_file():
        raise DashboardError(f"{trials_path}: missing (a run directory holds trials.parquet)")
    summary = _read_json(run_dir / "summary.json")
    experiment = _read_yaml(run_dir / "experiment.yaml")
    raw = summary.get("objectives") or experiment.get("objectives")
    objectives = parse_objectives(raw, source=str(run_dir / "summary.json"))
    if not objectives:
        raise DashboardError(f"{run_dir}: no objectives in summary.json or experiment.yaml")
    trials = _complete(_read_parquet(trials_path)).reset_index(drop=True)
    missing = [o.name for o in objectives if o.name not in trials.columns]
    if missing:
        raise DashboardError(
            f"{trials_path}: objective column(s) {missing} missing; columns: {sorted(trials.columns)}"
        )
    run_name = name or str(experiment.get("name") or run_dir.name)
    trial_col = first_column(trials, TRIAL_COLUMNS)
    trials["trial"] = trials[trial_col] if trial_col else np.arange(len(trials))
    trials = trials.sort_values("trial", kind="stable").reset_index(drop=True)
    sys_col = first_column(trials, SYSTEM_COLUMNS)
    trials["group"] = trials[sys_col].astype(str) if sys_col else run_name
    refs_path = run_dir / "references.parquet"
    refs = _read_parquet(refs_path) if refs_path.is_file() else pd.DataFrame()
    if len(refs) and "fail_reason" in refs.columns:  # references that could not be evaluated
        refs = refs[refs["fail_reason"].fillna("").astype(str) == ""].reset_index(drop=True)
    if len(refs):
        ref_sys = first_column(refs, SYSTEM_COLUMNS)
        refs["group"] = refs[ref_sys].astype(str) if ref_sys else run_name
        name_col = first_column(refs, REFERENCE_NAME_COLUMNS)
        refs["name"] = (
            refs[name_col].astype(str) if name_col else [f"reference {i}" for i in range(len(refs))]
        )
    return Run(
        name=run_name,
        run_dir=run_dir,
        objectives=objectives,
        trials=trials,
        references=refs,
        summary=summary,
        experiment=experiment,
    )


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Every run merged: trials and references with a ``group`` per system (or run)."""

    runs: tuple[Run, ...]
    objectives: tuple[Objective, ...]
    trials: pd.DataFrame
    references: pd.DataFrame

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(self.trials["group"]))


def merge_runs(runs: Sequence[Run]) -> Dataset:
    """Merge runs on the first run's objectives; groups are systems, or runs when they clash."""
    if not runs:
        raise DashboardError("no run directories given")
    objectives = runs[0].objectives
    for run in runs[1:]:
        missing = [o.name for o in objectives if o.name not in run.trials.columns]
        if missing:
            raise DashboardError(f"{run.run_dir}: lacks objective column(s) {missing}")
    trial_groups = [set(r.trials["group"]) for r in runs]
    clash = len(runs) > 1 and len(set().union(*trial_groups)) < sum(map(len, trial_groups))
    frames, ref_frames = [], []
    for run in runs:
        t, r = run.trials.copy(), run.references.copy()
        if clash:
            t["group"] = run.name + " / " + t["group"] if t["group"].nunique() > 1 else run.name
            if len(r):
                r["group"] = run.name
        t["run"] = run.name
        frames.append(t)
        ref_frames.append(r)
    trials = pd.concat(frames, ignore_index=True)
    trials["on_front"] = _mark_front(trials, objectives)
    refs = (
        pd.concat(ref_frames, ignore_index=True)
        if any(len(r) for r in ref_frames)
        else pd.DataFrame()
    )
    if len(refs):
        refs = refs.drop_duplicates(subset=["name", "group"]).reset_index(drop=True)
    return Dataset(runs=tuple(runs), objectives=objectives, trials=trials, references=refs)


def axis_options(data: Dataset) -> list[str]:
    """Columns offered on the 2-D axes: objectives first, then headline metrics present."""
    names = [o.name for o in data.objectives]
    for metric in AXIS_METRICS:
        if (
            metric in data.trials.columns
            and metric not in names
            and pd.api.types.is_numeric_dtype(data.trials[metric])
        ):
            names.append(metric)
    return names
