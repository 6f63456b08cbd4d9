"""The search-backend plug-in point: a problem, an ask/tell searcher, and a registry.

A :class:`Problem` knows how to *suggest* a candidate on a define-by-run trial and how to
*evaluate* it into a flat trial record; a :class:`GridProblem` can also evaluate its whole
grid at once (the exhaustive backend). A :class:`Searcher` is the ask/tell half of a
backend (``ask`` a trial, ``tell`` its record or failure); :func:`drive` is the one loop that
joins them for the Optuna backend. A :class:`Backend` runs a whole search and returns one
row per trial. Backends are registered by name and imported lazily; unknown names list the
known ones. The concrete problem of an experiment is :class:`nas.problem.ExperimentProblem`;
this package never imports it (``docs/design.md``, dependency rules).
"""

from __future__ import annotations

import importlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from nas.jsonsafe import jsonable, plain_value  # re-exported: records as plain JSON

if TYPE_CHECKING:
    from nas.experiment import Constraint, SearchSettings

__all__ = [
    "Backend",
    "BackendUnavailable",
    "GridProblem",
    "Objective",
    "Problem",
    "ProblemFactory",
    "ProgressFn",
    "RunError",
    "SearchJob",
    "Searcher",
    "TrialFailed",
    "TrialOutcome",
    "TrialPruned",
    "constraint_frame",
    "constraint_values",
    "drive",
    "get_backend",
    "jsonable",
    "list_backends",
    "plain_value",
]


class BackendUnavailable(ValueError):
    """A backend that is registered but cannot run here (an extra is missing, or the problem
    lacks what the backend needs)."""


class RunInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C (or by its backend on one); ``run_dir`` resumes it."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir


class RunError(ValueError):
    """A run directory (or the search state saved in it) that cannot be used; one line
    naming it."""


class TrialFailed(Exception):
    """Raised by a problem for a candidate that cannot be evaluated; the trial FAILs."""


class TrialPruned(Exception):
    """Raised by a problem when an evaluator stops a trial early; the trial is PRUNED."""


@dataclass(frozen=True, kw_only=True)
class Objective:
    """One objective: ``metric`` names a key of the trial record (its unit is the record's,
    e.g. ``step_time_s`` in seconds), ``direction`` is ``"min"`` or ``"max"``."""

    metric: str
    direction: str  # "min" | "max"

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ValueError(
                f"objectives.{self.metric}: must be min or max, got {self.direction!r}"
            )


@runtime_checkable
class Problem(Protocol):
    """What a backend optimises. ``evaluate`` may raise :class:`TrialFailed`,
    :class:`TrialPruned` or any exception (the trial FAILs with the reason).

    ``evaluator`` is the accuracy evaluator the problem scores candidates with (``None`` when
    it scores them itself); a backend may read its settings (the Ray backend: the proxy
    run's steps) or wrap it to receive intermediate losses."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    evaluator: Any

    def suggest(self, trial: Any) -> Any:
        """The candidate proposed by a define-by-run ``trial`` (Optuna's trial API)."""
        ...

    def evaluate(self, candidate: Any) -> dict[str, Any]:
        """The flat trial record of ``candidate``."""
        ...

    def device_memory_bytes(self, record: Mapping[str, Any]) -> float:
        """Memory of one device of the record's system, bytes (relative constraints)."""
        ...


@runtime_checkable
class GridProblem(Problem, Protocol):
    """A problem whose whole grid can be evaluated at once (the exhaustive backend)."""

    def evaluate_grid(
        self, *, max_candidates: int, on_chunk: Callable[[int, int], None] | None = None
    ) -> pd.DataFrame:
        """One row per candidate: ``param_*`` columns and every metric; a grid larger than
        ``max_candidates`` is refused; ``on_chunk(done, total)`` reports progress."""
        ...

    def replan(self, judged: pd.DataFrame, *, limit: int) -> int:
        """Evaluate at most ``limit`` leading rows of a judged grid again, more exactly, in
        place; returns how many rows changed (0 when the problem has nothing to refine)."""
        ...


ProblemFactory = Callable[[], Problem]


def constraint_values(problem: Problem, record: Mapping[str, Any]) -> list[float]:
    """Optuna's convention: one value per constraint, <= 0 when satisfied. Violations are
    relative to the bound so constraints of different units mix fairly."""
    out: list[float] = []
    for c in problem.constraints:
        value = record.get(c.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(1.0)
            continue
        if c.op == "==":
            out.append(0.0 if float(value) == c.bound else 1.0)
            continue
        bound = c.bound * (problem.device_memory_bytes(record) if c.relative_to else 1.0)
        scale = abs(bound) if bound != 0 else 1.0
        excess = (float(value) - bound) if c.op == "<=" else (bound - float(value))
        out.append(excess / scale)
    return out


def constraint_frame(problem: Problem, frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`constraint_values` for every row of a record table, column-wise (``c0``,
    ``c1``, ...; <= 0 satisfied)."""
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


@dataclass(frozen=True, kw_only=True)
class TrialOutcome:
    """What a searcher is told about one trial."""

    state: str  # "COMPLETE" | "FAIL" | "PRUNED"
    record: dict[str, Any]
    values: tuple[float, ...] = ()
    constraints: tuple[float, ...] = ()
    fail_reason: str = ""


class Searcher(ABC):
    """The ask/tell half of a backend."""

    @abstractmethod
    def ask(self) -> Any | None:
        """A new trial handle, or ``None`` when the requested number of trials is reached."""

    @abstractmethod
    def tell(self, trial: Any, outcome: TrialOutcome) -> None:
        """Record the outcome of ``trial``."""


ProgressFn = Callable[[TrialOutcome], None]


def evaluate_trial(problem: Problem, trial: Any) -> TrialOutcome:
    """Suggest, evaluate and judge one trial; evaluator errors become FAIL outcomes."""
    start = time.perf_counter()
    try:
        candidate = problem.suggest(trial)
        t0 = time.perf_counter()
        record = dict(problem.evaluate(candidate))
        record["eval_s"] = time.perf_counter() - t0
    except TrialPruned as exc:
        return TrialOutcome(state="PRUNED", record={}, fail_reason=f"pruned: {exc}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # any evaluator failure FAILs this trial only
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        return TrialOutcome(state="FAIL", record={}, fail_reason=reason)
    mistake = _objective_mistake(problem, record)
    if mistake is not None:
        from nas.experiment import ExperimentError

        raise ExperimentError(mistake)
    values = tuple(float(record[o.metric]) for o in problem.objectives)
    record["suggest_s"] = t0 - start
    bad = [
        o.metric for o, v in zip(problem.objectives, values, strict=True) if not math.isfinite(v)
    ]
    if bad:
        return TrialOutcome(
            state="FAIL", record=record, fail_reason=f"objective {bad[0]} is not finite"
        )
    cons = tuple(constraint_values(problem, record))
    return TrialOutcome(state="COMPLETE", record=record, values=values, constraints=cons)


def _objective_mistake(problem: Problem, record: dict[str, Any]) -> str | None:
    """Why the record cannot give the objectives (a mistake in the experiment), or None."""
    missing = [o.metric for o in problem.objectives if o.metric not in record]
    if missing:
        return f"objectives.{missing[0]}: not a metric of the trial record; known: {_numeric_names(record)}"  # fmt: skip
    text = [o.metric for o in problem.objectives if not _is_number(record[o.metric])]
    if text:
        return (f"objectives.{text[0]}: not a number (the record holds {record[text[0]]!r}); "
                f"numeric metrics: {_numeric_names(record)}")  # fmt: skip
    return None


def _numeric_names(record: dict[str, Any]) -> str:
    return ", ".join(sorted(k for k in record if _is_number(record[k])))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def drive(searcher: Searcher, problem: Problem, *, progress: ProgressFn | None = None) -> int:
    """Ask, evaluate, tell until the searcher says stop; returns the trials run here."""
    count = 0
    while (trial := searcher.ask()) is not None:
        outcome = evaluate_trial(problem, trial)
        searcher.tell(trial, outcome)
        count += 1
        if progress is not None:
            progress(outcome)
    return count


@dataclass(frozen=True, kw_only=True)
class SearchJob:
    """Everything a backend needs. ``problem_factory`` builds the problem (again in each
    worker process)."""

    problem_factory: Callable[[], Problem]
    settings: SearchSettings
    run_dir: Path
    study_name: str
    resume: bool = False
    # grid backends: (candidates done, total) after each chunk, for a progress bar
    grid_progress: Callable[[int, int], None] | None = None


class Backend(ABC):
    """A search backend: runs a job and returns one row per trial (see ``nas.runs``)."""

    name: str = ""

    @abstractmethod
    def run(self, job: SearchJob, *, progress: ProgressFn | None = None) -> pd.DataFrame:
        """Run (or resume) the search and return the trial table."""


# --- registry ----------------------------------------------------------------------------

_REGISTRY: dict[str, str] = {
    "optuna": "nas.search.optuna_backend:OptunaBackend",
    "exhaustive": "nas.search.exhaustive:ExhaustiveBackend",
    "ray": "nas.search.ray.backend:RayBackend",  # needs the [ray] extra (checked when run)
}
_DESCRIPTIONS: dict[str, str] = {
    "optuna": "Optuna study driven by ask/tell (NSGA-II/III, TPE, GP, random), local workers",
    "exhaustive": "every candidate of the grid at once, vectorised; the exact Pareto front",
    "ray": "Ray Tune with the Optuna samplers, ASHA on proxy training (needs the [ray] extra)",
}


def list_backends() -> dict[str, str]:
    """Every registered backend name -> a one-line description (a missing extra is reported
    when the backend is run)."""
    return {name: _DESCRIPTIONS[name] for name in sorted(_REGISTRY)}


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; unknown or unavailable names raise one line."""
    if name not in _REGISTRY:
        raise BackendUnavailable(
            f"search.backend: unknown backend {name!r}; known: {', '.join(list_backends())}"
        )
    module_name, cls_name = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    backend: Backend = cls()
    return backend
