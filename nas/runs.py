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
* ``dashboard.html`` — the Pareto dashboard (:func:`nas.dashboard.write_dashboard`);
* ``run.lock`` — one writer at a time (:mod:`nas.rundir`); results files are written to a
  temp file and renamed, never half-written.

Hypervolume: objectives normalised between an ideal and a nadir fixed before the search
(from the corners of the space where they can be evaluated), reference point 1.1 in every
normalised coordinate; the progress bar and ``summary.json`` use the same scale, so the bar's
last value is the summary's and it never goes down (:mod:`nas.search.hv_scale`). It
compares runs of the same experiment, not different experiments.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from nas.experiment import Experiment, ExperimentError, dump_experiment, load_experiment
from nas.run_results import LiveFront, front_frame, summarise, write_results
from nas.rundir import (
    LOCK_NAME,
    atomic_write,
    atomic_write_text,
    list_runs,
    restart_study,
    resume_study_problem,
    run_lock,
    write_parquet,
)
from nas.search.base import (
    Problem,
    ProblemFactory,
    ProgressFn,
    RunError,
    RunInterrupted,
    SearchJob,
    TrialOutcome,
    get_backend,
)
from nas.search.hv_scale import (
    REFERENCE_MARGIN,
    space_scale,
)

__all__ = [
    "REFERENCE_MARGIN",
    "LiveFront",
    "RunError",
    "RunResult",
    "finished_trials",
    "front_frame",
    "list_runs",
    "live_front",
    "new_run_dir",
    "resume_run",
    "start_run",
    "summarise",
    "with_overrides",
]

GridProgressFn = Callable[[int, int], None]  # (candidates done, total)
NoticeFn = Callable[[str], None]


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
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise RunError(
                f"--out {out}: folder is not empty and holds no run ({shown}); "
                "give a new or empty folder"
            )


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
    grid_progress: GridProgressFn | None = None,
    notice: NoticeFn | None = None,
) -> RunResult:
    """Evaluate the reference models, create a run directory, search, write the results.

    The problem is built and the references evaluated first, so a mistake in the experiment
    (unknown space, system or metric) leaves no half-made run directory behind. The run
    directory is locked (:func:`nas.rundir.run_lock`) until the results are written."""
    factory = problem_factory or _default_factory(experiment)
    refs = _reference_rows(factory(), experiment)
    if experiment.search.backend == "optuna":
        from nas.search.optuna_backend import refuse_taken_study

        refuse_taken_study(experiment.search, experiment.name)
    if experiment.search.backend == "ray" and experiment.search.ray.address is not None:
        from nas.search.ray.backend import check_reachable

        check_reachable(experiment.search.ray.address)  # before the run directory exists
    run_dir = new_run_dir(experiment, out=out, root=root)
    with run_lock(run_dir, notice=notice):
        refuse_used_run_dir(run_dir)  # again under the lock: a racing start may have won
        atomic_write_text(run_dir / "experiment.yaml", dump_experiment(experiment))
        log = _logger(run_dir)
        log.info(
            "start %s: backend %s, %d trials",
            experiment.name,
            experiment.search.backend,
            experiment.search.trials,
        )
        if refs is not None:
            atomic_write(run_dir / "references.parquet", partial(write_parquet, refs))
            failed = int((refs["fail_reason"] != "").sum()) if "fail_reason" in refs else 0
            log.info("references: %d evaluated, %d failed", len(refs), failed)
        return _search(
            run_dir, experiment, factory, progress=progress, resume=False, grid=grid_progress
        )


def resume_run(
    run_dir: Path,
    *,
    trials: int | None = None,
    problem_factory: ProblemFactory | None = None,
    progress: ProgressFn | None = None,
    force_restart: bool = False,
    notice: NoticeFn | None = None,
) -> RunResult:
    """Continue a run: completed trials are kept, interrupted ones are asked again. A missing,
    empty or damaged study file is refused unless ``force_restart`` (the damaged file is then
    renamed ``*.damaged`` and the trials start again)."""
    run_dir = Path(run_dir)
    path = run_dir / "experiment.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a run directory (no experiment.yaml)")
    with run_lock(run_dir, notice=notice):
        experiment = load_experiment(path)
        if experiment.search.backend == "ray" and trials not in (None, experiment.search.trials):
            raise RunError(
                f"--trials: a ray run resumes to its own {experiment.search.trials} trials "
                "(Tune's restore keeps the trial count it started with); leave --trials out"
            )
        log = _logger(run_dir)

        def _warn(line: str) -> None:
            log.warning(line)
            if notice is not None:
                notice(line)

        problem = resume_problem(run_dir, experiment)
        if problem is not None:
            restart_study(
                run_dir,
                problem,
                storage=experiment.search.storage,
                force=force_restart,
                notice=_warn,
            )
        if trials is not None:
            experiment = with_overrides(experiment, trials=trials)
            atomic_write_text(path, dump_experiment(experiment))
        factory = problem_factory or _default_factory(experiment)
        log.info("resume %s (%d trials)", run_dir, experiment.search.trials)
        # the summary of the earlier finish stops describing the run now: kept aside, so a
        # resume that is interrupted lists as unfinished, not done with stale figures
        summary = run_dir / "summary.json"
        if summary.is_file():
            os.replace(summary, run_dir / "summary.previous.json")
        return _search(run_dir, experiment, factory, progress=progress, resume=True)


def resume_problem(run_dir: Path, experiment: Experiment) -> str | None:
    """Why the run's study cannot be resumed from (one line naming the file), or None."""
    search = experiment.search
    return resume_study_problem(
        run_dir, backend=search.backend, storage=search.storage, study_name=experiment.name
    )


def _search(
    run_dir: Path,
    experiment: Experiment,
    factory: ProblemFactory,
    *,
    progress: ProgressFn | None,
    resume: bool,
    grid: GridProgressFn | None = None,
) -> RunResult:
    log = _logger(run_dir)
    backend = get_backend(experiment.search.backend)
    job = SearchJob(
        problem_factory=factory,
        settings=experiment.search,
        run_dir=run_dir,
        study_name=experiment.name,
        resume=resume,
        grid_progress=grid,
    )

    def _log_progress(outcome: TrialOutcome) -> None:
        values = ", ".join(f"{v:.6g}" for v in outcome.values)
        log.info("trial %s [%s] %s", outcome.state, values, outcome.fail_reason)
        if progress is not None:
            progress(outcome)

    problem = factory()
    scale = space_scale(problem, problem.objectives)
    try:
        frame = backend.run(job, progress=_log_progress)
    except KeyboardInterrupt:
        log.info("interrupted")
        raise RunInterrupted(run_dir) from None
    summary = write_results(run_dir, experiment, frame, problem.objectives, scale=scale)
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
            if where == "objectives" and name not in numeric:
                raise ExperimentError(
                    f"{where}.{name}: not a number (the record holds text there); "
                    f"numeric metrics: {', '.join(numeric)}"
                )
    return refs


def _write_dashboard(run_dir: Path, log: logging.Logger) -> None:
    """``run_dir/dashboard.html``; a failure is logged and the run's results are kept."""
    from nas.dashboard import write_dashboard

    try:
        write_dashboard(run_dir)
    except Exception as exc:  # the results are written; a dashboard failure must not lose them
        log.warning("dashboard not written: %s", exc)


def live_front(experiment: Experiment) -> LiveFront:
    """The progress bar's front for ``experiment``, in the scale its run will summarise in."""
    problem = _default_factory(experiment)()
    return LiveFront(problem.objectives, scale=space_scale(problem, problem.objectives))
