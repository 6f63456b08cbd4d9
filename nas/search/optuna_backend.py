"""The Optuna backend: a multi-objective study driven through ask/tell.

* Storage lives in the run directory: ``study.db`` (SQLite, opens in ``optuna-dashboard``),
  ``study.log`` (journal file, safest for many worker processes) or any RDB URL.
* ``workers > 1`` starts that many processes on the same storage; each loads the study by
  name. A lock shared by the processes makes "count trials, then ask" atomic, so exactly the
  requested number of trials is run.
* Stored the way Optuna and ``optuna-dashboard`` read a study (named objectives, one user
  attribute per metric, constraint values where Optuna's samplers keep them):
  :mod:`nas.search.optuna_storage`.
* Resume: trials left RUNNING by a dead process are marked FAIL (``interrupted``) and not
  counted, so they are asked again; finished trials are kept.
* A failure's reason is the user attribute ``fail_reason``.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.base import (
    Backend,
    Problem,
    ProgressFn,
    Searcher,
    SearchJob,
    TrialOutcome,
    drive,
    jsonable,
)
from nas.search.optuna_storage import (
    FAIL_REASON,
    INTERRUPTED,
    name_study,
    set_constraints,
    set_metrics,
    trial_constraints,
    trial_record,
)

if TYPE_CHECKING:
    import pandas as pd

    from nas.experiment import SearchSettings

__all__ = ["OptunaBackend", "OptunaSearcher", "make_sampler", "open_storage", "trials_frame"]

optuna.logging.set_verbosity(optuna.logging.WARNING)

_HAS_SET_CONSTRAINT = hasattr(optuna.Trial, "set_constraint")


def _constraints(trial: FrozenTrial) -> Sequence[float]:
    return trial_constraints(trial)


def make_sampler(
    settings: SearchSettings, *, seed_offset: int = 0, has_constraints: bool
) -> optuna.samplers.BaseSampler:
    """The sampler named in ``settings`` (seeded; ``seed_offset`` differs per worker)."""
    seed = (settings.seed + seed_offset) % 2**32  # numpy's seed range; the last seed wraps to 0
    # Optuna >= 5 reads the constraints stored on the trial (Trial.constraints); older versions
    # need constraints_func, which returns the same stored list.
    cons = _constraints if has_constraints and not _HAS_SET_CONSTRAINT else None
    pop: dict[str, Any] = {}
    if settings.population_size is not None:
        pop["population_size"] = settings.population_size
    if cons is not None:
        pop["constraints_func"] = cons
    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **pop)
    if settings.sampler == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, **pop)
    pop.pop("population_size", None)
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, **pop)
    if settings.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, **pop)
    return optuna.samplers.RandomSampler(seed=seed)


def open_storage(settings: SearchSettings, run_dir: Path) -> optuna.storages.BaseStorage:
    """SQLite ``study.db`` / journal ``study.log`` in ``run_dir``, or the given RDB URL."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if settings.storage == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(run_dir / "study.log")))
    url = settings.storage if "://" in settings.storage else f"sqlite:///{run_dir / 'study.db'}"
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if not url.startswith("sqlite"):
            return optuna.storages.RDBStorage(url)
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    except SQLAlchemyError as exc:  # unreachable server, unwritable sqlite path, bad login
        from nas.experiment import ExperimentError

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExperimentError(f"search.storage: cannot open {url}: {reason}") from None
    _fast_sqlite(storage)
    return storage


def refuse_taken_study(settings: SearchSettings, study_name: str) -> None:
    """A new run on a shared storage URL must not adopt another run's study of the same name
    (its trials, its parameter space): one line before the run directory is made."""
    if "://" not in settings.storage:
        return  # sqlite / journal: a fresh file in the new run directory
    storage = open_storage(settings, Path("."))
    if study_name in {s.study_name for s in storage.get_all_studies()}:
        from nas.experiment import ExperimentError

        raise ExperimentError(
            f"search.storage: {settings.storage} already holds a study named {study_name!r} "
            "(another run's); give the experiment another name, or resume that run"
        )


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal and ``synchronous=NORMAL``: a commit no longer waits for an fsync (200 ms
    per trial on a busy disk, measured here) yet the database survives a killed process —
    WAL with NORMAL loses at most the last transactions on an OS crash or power loss
    (https://www.sqlite.org/pragma.html#pragma_synchronous), not on a process crash."""
    from sqlalchemy import event

    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", _pragmas)
    storage.engine.dispose()  # connections opened while creating the schema lack the pragmas


def counted_trials(trials: Sequence[FrozenTrial]) -> int:
    """Trials that count towards the requested number: all but those a dead process left
    RUNNING (marked ``interrupted`` on resume and asked again)."""
    return sum(1 for t in trials if not t.user_attrs.get(INTERRUPTED))


class OptunaSearcher(Searcher):
    """Ask/tell over one Optuna study, stopping at ``n_trials`` counted trials."""

    def __init__(self, study: optuna.Study, *, n_trials: int, lock: Any | None = None) -> None:
        self.study = study
        self.n_trials = n_trials
        self.lock = lock

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.lock is None:
            yield
            return
        with self.lock:
            yield

    def ask(self) -> optuna.Trial | None:
        with self._locked():
            if counted_trials(self.study.get_trials(deepcopy=False)) >= self.n_trials:
                return None
            return self.study.ask()

    def tell(self, trial: Any, outcome: TrialOutcome) -> None:
        if outcome.state == "COMPLETE":
            if outcome.constraints:
                set_constraints(trial, outcome.constraints)
            set_metrics(trial, jsonable(outcome.record))
            self.study.tell(trial, list(outcome.values))
            return
        trial.set_user_attr(FAIL_REASON, outcome.fail_reason)
        set_metrics(trial, jsonable(outcome.record))
        state = TrialState.PRUNED if outcome.state == "PRUNED" else TrialState.FAIL
        self.study.tell(trial, state=state)


def _load_or_create(job: SearchJob, problem: Problem) -> optuna.Study:
    storage = open_storage(job.settings, job.run_dir)
    directions = [
        optuna.study.StudyDirection.MAXIMIZE
        if o.direction == "max"
        else optuna.study.StudyDirection.MINIMIZE
        for o in problem.objectives
    ]
    study = optuna.create_study(
        storage=storage,
        study_name=job.study_name,
        directions=directions,
        load_if_exists=True,
        sampler=make_sampler(job.settings, has_constraints=bool(problem.constraints)),
    )
    name_study(study, problem)
    return study


def mark_interrupted(study: optuna.Study) -> int:
    """Mark trials left RUNNING by a dead process as FAIL (``interrupted``); returns how many."""
    storage = study._storage
    count = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        storage.set_trial_user_attr(t._trial_id, FAIL_REASON, "interrupted: process died")
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        count += 1
    return count


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the run process dies (even by SIGKILL), so a
    killed run leaves no orphan writing to the study while it is resumed."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _worker(job: SearchJob, index: int, lock: Any) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the parent stops the workers and exits 130,
    # so a worker must not die of it on its own with a traceback (and exit code 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    problem = job.problem_factory()
    storage = open_storage(job.settings, job.run_dir)
    sampler = make_sampler(
        job.settings, seed_offset=index, has_constraints=bool(problem.constraints)
    )
    study = optuna.load_study(study_name=job.study_name, storage=storage, sampler=sampler)
    drive(OptunaSearcher(study, n_trials=job.settings.trials, lock=lock), problem)


class OptunaBackend(Backend):
    """One Optuna study in the run directory, driven by ``search.workers`` processes."""

    name = "optuna"

    def run(self, job: SearchJob, *, progress: ProgressFn | None = None) -> pd.DataFrame:
        problem = job.problem_factory()
        study = _load_or_create(job, problem)
        if job.resume:
            mark_interrupted(study)
        if job.settings.workers == 1:
            drive(OptunaSearcher(study, n_trials=job.settings.trials), problem, progress=progress)
        else:
            self._run_workers(job, study, progress)
        return trials_frame(study.get_trials(deepcopy=False))

    def _run_workers(
        self, job: SearchJob, study: optuna.Study, progress: ProgressFn | None
    ) -> None:
        ctx = mp.get_context("fork")
        lock = ctx.Lock()
        procs = [
            ctx.Process(target=_worker, args=(job, i, lock), daemon=True)
            for i in range(job.settings.workers)
        ]
        for p in procs:
            p.start()
        seen: set[int] = set()
        try:
            while any(p.is_alive() for p in procs):
                time.sleep(0.5)
                if progress is not None:
                    _report_new(study, seen, progress)
        except KeyboardInterrupt:  # stop the workers; their running trials resume later
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(timeout=10)
            raise
        for p in procs:
            p.join()
        if progress is not None:
            _report_new(study, seen, progress)
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise RuntimeError(f"{len(bad)} search worker(s) exited with codes {bad}")


def _report_new(study: optuna.Study, seen: set[int], progress: ProgressFn) -> None:
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    for t in study.get_trials(deepcopy=False, states=finished):
        if t.number in seen or t.user_attrs.get(INTERRUPTED):
            continue
        seen.add(t.number)
        record = trial_record(t)
        state = t.state.name
        values = tuple(t.values) if t.values is not None else ()
        cons = tuple(trial_constraints(t))
        reason = str(t.user_attrs.get(FAIL_REASON, ""))
        progress(
            TrialOutcome(
                state=state, record=record, values=values, constraints=cons, fail_reason=reason
            )
        )


def trials_frame(trials: Sequence[FrozenTrial]) -> pd.DataFrame:
    """One row per trial: number, state, duration, feasibility, failure reason, ``param_*``
    (raw sampled parameters), then every metric of the record."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for t in trials:
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete is not None and t.datetime_start is not None
            else math.nan
        )
        cons = trial_constraints(t)
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "duration_s": duration,
            "feasible": bool(t.state == TrialState.COMPLETE and all(c <= 0 for c in cons)),
            "fail_reason": str(t.user_attrs.get(FAIL_REASON, "")),
        }
        row.update({f"param_{k}": v for k, v in t.params.items()})
        record = trial_record(t)
        row.update({k: v for k, v in record.items() if k not in row})
        rows.append(row)
    out: pd.DataFrame = pd.DataFrame(rows)
    return out
