"""Run directories: durable, resumable results of one experiment.

``runs/<name>-<YYYYmmdd-HHMMSS>/`` (or ``--out``) holds

* ``experiment.yaml`` — the resolved experiment (defaults and command-line overrides applied);
* ``study.db`` — the Optuna study (SQLite; ``study.log`` for journal storage);
* ``trials.parquet`` — one row per trial: ``number``, ``state``, ``duration_s``, ``feasible``,
  ``fail_reason``, ``param_*`` (sampled values), then every metric of the trial record;
* ``pareto.csv`` — the feasible non-dominated trials;
* ``summary.json`` — counts, front size, hypervolume (with its reference point), best trial
  per objective;
* ``references.parquet`` — catalogue models evaluated under the same workload;
* ``run.log`` — what happened, one line per event;
* ``dashboard.html`` — the Pareto dashboard (:func:`nas.dashboard.write_dashboard`).

Hypervolume reference point: objectives are turned into minimisation (max negated) and
normalised per objective to [0, 1] between the best and worst value over the feasible
completed trials; the reference point is 1.1 in every normalised coordinate (the usual
10 % margin beyond the nadir, so the extreme points of the front still contribute). The
normalised hypervolume therefore lies in [0, 1.1^m]; it compares runs of the same
experiment, not different experiments.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.experiment import Experiment, ExperimentError, dump_experiment, load_experiment
from nas.search.base import (
    Objective,
    Problem,
    ProblemFactory,
    ProgressFn,
    RunError,
    SearchJob,
    TrialOutcome,
    get_backend,
    plain_value,
)
from nas.search.pareto import (
    hypervolume,
    non_dominated,
    normalise,
    objective_matrix,
    to_minimisation,
)

__all__ = [
    "REFERENCE_MARGIN",
    "LiveFront",
    "RunError",
    "RunResult",
    "finished_trials",
    "front_frame",
    "list_runs",
    "new_run_dir",
    "resume_run",
    "start_run",
    "summarise",
    "with_overrides",
]

REFERENCE_MARGIN = 1.1  # reference point in normalised objective space (see module doc)


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """A finished search: its run directory, ``summary.json`` as a dict and the trial table."""

    run_dir: Path
    summary: dict[str, Any]
    trials: pd.DataFrame = field(repr=False)


def with_overrides(
    experiment: Experiment,
    *,
    trials: int | None = None,
    backend: str | None = None,
    workers: int | None = None,
    seed: int | None = None,
) -> Experiment:
    """The experiment with command-line overrides of its search settings (re-validated)."""
    from nas.experiment import experiment_from_dict

    data = experiment.model_dump(mode="json")
    updates = {"trials": trials, "backend": backend, "workers": workers, "seed": seed}
    data["search"].update({k: v for k, v in updates.items() if v is not None})
    return experiment_from_dict(data, source="command line")


def new_run_dir(
    experiment: Experiment, *, out: Path | None = None, root: Path = Path("runs")
) -> Path:
    """Create the run directory (``out`` or ``root/<name>-<stamp>``); refuses a used one."""
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = root / f"{experiment.name}-{stamp}"
        suffix = 1
        while out.exists():
            suffix += 1
            out = root / f"{experiment.name}-{stamp}-{suffix}"
    refuse_used_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def refuse_used_run_dir(out: Path) -> None:
    """A run directory that already holds a run is an error (resume it instead)."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a directory; give a new or empty folder")
    if (out / "experiment.yaml").exists():
        raise RunError(f"{out}: already holds a run; use --resume {out} or another --out")


def _logger(run_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"nas.run.{run_dir.resolve()}")
    if not log.handlers:
        handler = logging.FileHandler(run_dir / "run.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def finished_trials(run_dir: Path) -> int:
    """Trials of a run (finished or not) that count towards its target, read from its
    study (Optuna), or from the trial lines of its log (Ray: one per finished trial, as
    the Tune callback reports them); 0 when there are none yet."""
    experiment = load_experiment(run_dir / "experiment.yaml")
    if experiment.search.backend == "ray":
        log = run_dir / "run.log"
        if not log.is_file():
            return 0
        return len(re.findall(r" trial (?:COMPLETE|FAIL|PRUNED) ", log.read_text()))
    if experiment.search.backend != "optuna":
        return 0
    import optuna
    from optuna.trial import TrialState

    from nas.search.optuna_backend import counted_trials, open_storage

    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)

    storage = open_storage(experiment.search, run_dir)
    try:
        study = optuna.load_study(study_name=experiment.name, storage=storage)
    except KeyError:
        return 0
    return counted_trials(study.get_trials(deepcopy=False, states=finished))


def _default_factory(experiment: Experiment) -> ProblemFactory:
    from nas.problem import ExperimentProblem

    return partial(ExperimentProblem, experiment)


def start_run(
    experiment: Experiment,
    *,
    out: Path | None = None,
    root: Path = Path("runs"),
    problem_factory: ProblemFactory | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Evaluate the reference models, create a run directory, search, write the results.

    The problem is built and the references evaluated first, so a mistake in the experiment
    (unknown space, system or metric) leaves no half-made run directory behind."""
    factory = problem_factory or _default_factory(experiment)
    refs = _reference_rows(factory(), experiment)
    run_dir = new_run_dir(experiment, out=out, root=root)
    (run_dir / "experiment.yaml").write_text(dump_experiment(experiment))
    log = _logger(run_dir)
    log.info(
        "start %s: backend %s, %d trials",
        experiment.name,
        experiment.search.backend,
        experiment.search.trials,
    )
    if refs is not None:
        refs.to_parquet(run_dir / "references.parquet", index=False)
        failed = int((refs["fail_reason"] != "").sum()) if "fail_reason" in refs else 0
        log.info("references: %d evaluated, %d failed", len(refs), failed)
    return _search(run_dir, experiment, factory, progress=progress, resume=False)


def resume_run(
    run_dir: Path,
    *,
    trials: int | None = None,
    problem_factory: ProblemFactory | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Continue a run: completed trials are kept, interrupted ones are asked again."""
    path = Path(run_dir) / "experiment.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a run directory (no experiment.yaml)")
    experiment = load_experiment(path)
    if trials is not None:
        experiment = with_overrides(experiment, trials=trials)
        path.write_text(dump_experiment(experiment))
    factory = problem_factory or _default_factory(experiment)
    _logger(Path(run_dir)).info("resume %s (%d trials)", run_dir, experiment.search.trials)
    return _search(Path(run_dir), experiment, factory, progress=progress, resume=True)


def _search(
    run_dir: Path,
    experiment: Experiment,
    factory: ProblemFactory,
    *,
    progress: ProgressFn | None,
    resume: bool,
) -> RunResult:
    log = _logger(run_dir)
    backend = get_backend(experiment.search.backend)
    job = SearchJob(
        problem_factory=factory,
        settings=experiment.search,
        run_dir=run_dir,
        study_name=experiment.name,
        resume=resume,
    )

    def _log_progress(outcome: TrialOutcome) -> None:
        values = ", ".join(f"{v:.6g}" for v in outcome.values)
        log.info("trial %s [%s] %s", outcome.state, values, outcome.fail_reason)
        if progress is not None:
            progress(outcome)

    frame = backend.run(job, progress=_log_progress)
    objectives = factory().objectives
    summary = _write_results(run_dir, experiment, frame, objectives)
    log.info(
        "done: %d trials, front %d, hypervolume %.6g",
        summary["trials"],
        summary["front_size"],
        summary["hypervolume"],
    )
    _write_dashboard(run_dir, log)
    return RunResult(run_dir=run_dir, summary=summary, trials=frame)


def _reference_rows(problem: Problem, experiment: Experiment) -> pd.DataFrame | None:
    """The reference models' records (None when the problem is not an experiment's, e.g. a
    test problem); every objective and constraint must be one of their metrics."""
    from nas.problem import ExperimentProblem

    if not isinstance(problem, ExperimentProblem):
        return None
    refs = problem.evaluate_references(experiment.references)
    ok = refs[refs["fail_reason"] == ""] if "fail_reason" in refs else refs
    if len(ok):
        numeric = sorted(c for c in ok.columns if pd.api.types.is_numeric_dtype(ok[c]))
        names = [o.metric for o in problem.objectives] + [c.metric for c in problem.constraints]
        kind = ["objectives"] * len(problem.objectives) + ["constraints"] * len(problem.constraints)
        for name, where in zip(names, kind, strict=True):
            if name not in ok.columns:
                mode = experiment.workload.mode  # train and serve records differ
                raise ExperimentError(
                    f"{where}.{name}: not a metric of the trial record of workload.mode "
                    f"{mode}; known: {', '.join(numeric)}"
                )
    return refs


def _write_dashboard(run_dir: Path, log: logging.Logger) -> None:
    """``run_dir/dashboard.html``; a failure is logged and the run's results are kept."""
    from nas.dashboard import write_dashboard

    try:
        write_dashboard(run_dir)
    except Exception as exc:  # the results are written; a dashboard failure must not lose them
        log.warning("dashboard not written: %s", exc)


# --- results -----------------------------------------------------------------------------


def _feasible(frame: pd.DataFrame) -> pd.Series:
    if len(frame) == 0:
        return pd.Series(dtype=bool)
    return (frame["state"] == "COMPLETE") & frame["feasible"].astype(bool)


def front_frame(frame: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The feasible, completed, non-dominated trials, sorted by the first objective."""
    ok = frame[_feasible(frame)] if len(frame) else frame
    if len(ok) == 0:
        return ok
    mask = non_dominated(objective_matrix(ok, objectives))
    out: pd.DataFrame = ok[mask].sort_values(
        objectives[0].metric, ascending=objectives[0].direction == "min"
    )
    return out


def summarise(frame: pd.DataFrame, objectives: Sequence[Objective]) -> dict[str, Any]:
    """Counts, front size, normalised hypervolume (reference point in the module doc), best
    trial per objective."""
    states = frame["state"].value_counts().to_dict() if len(frame) else {}
    ok = frame[_feasible(frame)] if len(frame) else frame
    out: dict[str, Any] = {
        "trials": len(frame),
        "complete": int(states.get("COMPLETE", 0)),
        "failed": int(states.get("FAIL", 0)),
        "pruned": int(states.get("PRUNED", 0)),
        "feasible": len(ok),
        "objectives": {o.metric: o.direction for o in objectives},
        "front_size": 0,
        "hypervolume": 0.0,
        "hypervolume_reference": None,
        "best": {},
    }
    for key in ("candidates_evaluated", "replanned_rows"):  # exhaustive runs
        if key in frame.attrs:
            out[key] = int(frame.attrs[key])
    if len(ok) == 0:
        return out
    values = objective_matrix(ok, objectives)
    ideal, nadir = values.min(axis=0), values.max(axis=0)
    ref = np.full(len(objectives), REFERENCE_MARGIN)
    out["front_size"] = int(non_dominated(values).sum())
    out["hypervolume"] = hypervolume(normalise(values, ideal=ideal, nadir=nadir), ref)
    sign = np.array([-1.0 if o.direction == "max" else 1.0 for o in objectives])
    out["hypervolume_reference"] = {
        "normalised": ref.tolist(),
        "ideal": dict(zip([o.metric for o in objectives], (ideal * sign).tolist(), strict=True)),
        "nadir": dict(zip([o.metric for o in objectives], (nadir * sign).tolist(), strict=True)),
    }
    for i, o in enumerate(objectives):
        row = ok.iloc[int(np.argmin(values[:, i]))]
        params = {k: plain_value(v) for k, v in row.items() if str(k).startswith("param_")}
        out["best"][o.metric] = {
            "value": plain_value(row[o.metric]),
            "number": int(row["number"]),
            **params,
        }
    return out


def _write_results(
    run_dir: Path, experiment: Experiment, frame: pd.DataFrame, objectives: Sequence[Objective]
) -> dict[str, Any]:
    frame.to_parquet(run_dir / "trials.parquet", index=False)
    front_frame(frame, objectives).to_csv(run_dir / "pareto.csv", index=False)
    summary = summarise(frame, objectives)
    summary = {"name": experiment.name, "backend": experiment.search.backend, **summary}
    summary.update({str(k): plain_value(v) for k, v in frame.attrs.items()})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=plain_value))
    return summary


class LiveFront:
    """Front size and hypervolume while a search runs (for the progress bar)."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = tuple(objectives)
        self.points: list[tuple[float, ...]] = []
        self.done = 0
        self.failed = 0
        self.front_size = 0
        self.hypervolume = 0.0

    def add(self, outcome: TrialOutcome) -> None:
        self.done += 1
        if outcome.state != "COMPLETE":
            self.failed += 1
            return
        if all(c <= 0 for c in outcome.constraints):
            self.points.append(outcome.values)
            values = to_minimisation(np.array(self.points), [o.direction for o in self.objectives])
            ideal, nadir = values.min(axis=0), values.max(axis=0)
            self.front_size = int(non_dominated(values).sum())
            ref = np.full(len(self.objectives), REFERENCE_MARGIN)
            self.hypervolume = hypervolume(normalise(values, ideal=ideal, nadir=nadir), ref)


def list_runs(root: Path = Path("runs")) -> list[dict[str, Any]]:
    """One entry per run directory under ``root`` (newest first)."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if not (d / "experiment.yaml").is_file():
            continue
        summary_path = d / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        out.append({"run_dir": str(d), "status": "done" if summary else "unfinished", **summary})
    return out
