"""The Ray backend: the experiment's search as a Ray Tune run (``search.backend: ray``).

* Searcher: Tune's ``OptunaSearch`` with the define-by-run space of the problem, one
  objective per ``nas_obj_<i>`` result key and the sampler of ``search.sampler`` (the same
  :func:`nas.search.optuna_backend.make_sampler` as the Optuna backend), so the Ray and
  Optuna backends propose the same kind of trials. Constraints reach the sampler as in the
  Optuna backend (trial constraints, <= 0 feasible). Tune pickles the searcher, so the
  sampler is wrapped in :class:`nas.search.ray.sampler.RebuildingSampler` (NSGA-II holds a
  lock; its recipe is pickled and it is rebuilt on restore).
* ``ConcurrencyLimiter``: at most ``search.ray.concurrency`` trials at once (default
  ``search.workers``); each trial reserves ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs.
* ``scheduler: asha``: asynchronous successive halving (Li et al. 2020, "A System for Massively
  Parallel Hyperparameter Tuning", MLSys, Algorithm 2) over training steps. Only one metric
  can promote trials: the proxy's **validation loss** (``val_loss``, min), reported by
  ``proxy_train`` at every ``eval_every`` steps. Other objectives (step time, memory, ...)
  are known only at the end of a trial and never stop one early.
* Failures: a trial whose worker dies is retried up to ``max_failures`` times
  (``FailureConfig``); an evaluator error is a FAIL outcome and is not retried.
* Restore: Tune's state lives in ``<run_dir>/tune``, or ``<storage>/<run name>/tune`` with
  ``search.ray.storage`` (a shared path or a pyarrow URI, Tune's ``storage_path``);
  ``nas run --resume`` restores the interrupted Tuner (``Tuner.restore``, errored trials
  are retried).
* Each row names the Ray node that ran the trial (``node_id``, ``node_ip``).
* Workers are reused from trial to trial (``reuse_actors``): a new worker per trial cost
  ~1.5 s of overhead per trial here, reuse ~50 ms (``bench/bench_ray.py``, ``docs/ray.md``).
* The trial table has the Optuna backend's columns, so ``nas.runs`` writes the same files.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.search.base import Backend, BackendUnavailable, Problem, ProgressFn, SearchJob
from nas.search.ray.trial import (
    NODE_KEY,
    SpaceFn,
    frame_rows,
    objective_keys,
    outcome_from_result,
    row_from_result,
    run_trial,
)

if TYPE_CHECKING:
    import pandas as pd

    from nas.experiment import RaySettings, SearchSettings

__all__ = ["RayBackend", "check_tune_state", "connect", "tune_dir"]


def tune_dir(run_dir: Path, storage: str | None = None) -> str:
    """Where Tune keeps its experiment state (what ``Tuner.restore`` reads): ``tune/`` in the
    run directory, or ``<storage>/<run name>/tune`` with ``search.ray.storage``."""
    if storage is None:
        return str(run_dir.resolve() / "tune")
    from nas.search.ray.storage import run_location

    return f"{run_location(storage, run_dir.name)}/tune"


def connect(address: str | None) -> bool:
    """Connect to Ray (``None``: start a local one); True when this call connected."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            "search.backend: ray needs Ray installed: pip install -e '.[ray]'"
        ) from None
    if ray.is_initialized():
        return False
    if address is not None:
        check_reachable(address)
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    return True


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) that nothing answers on is one line here; Ray
    itself retries the GCS for minutes and ignores SIGTERM meanwhile."""
    import socket

    target = address.removeprefix("ray://")
    if address in ("auto", "local") or "://" in target or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BackendUnavailable(
            f"--address {address}: no Ray head answers there ({reason}); give HEAD_IP:6379 "
            "of a running cluster, or auto"
        ) from None


# Tune's pickled searcher states: the search generator's, the basic variant generator's and
# the searcher's own (ray.tune.search: SearchGenerator, BasicVariantGenerator, Searcher
# CKPT_FILE_TMPL); Tune restores each from the newest file name (utils._load_newest_checkpoint)
_PICKLED_STATES = ("search_gen_state-*.json", "basic-variant-state-*.json", "searcher-state-*.pkl")


def check_tune_state(path: Path) -> None:
    """Refuse a Tune state damaged by a kill while it was being copied into the run directory:
    Tune would restart the experiment with the searcher's old trial count, or fail to load
    the searcher and start afresh, and silently run too few trials (both seen in tests/ray)."""
    import json

    from nas.search.base import RunError

    def damaged(file: Path) -> RunError:
        return RunError(
            f"{file}: Tune's saved state is damaged (the run was killed while saving it); "
            "start a new run"
        )

    states = sorted(path.glob("experiment_state-*.json"))  # Tune restores from the newest
    for state in states[-1:]:
        try:
            json.loads(state.read_text())
        except ValueError:
            raise damaged(state) from None
    for pattern in _PICKLED_STATES:
        newest = sorted(path.glob(pattern))[-1:]
        if newest and not _complete_pickle(newest[0].read_bytes()):
            raise damaged(newest[0])


def _complete_pickle(data: bytes) -> bool:
    """Whether ``data`` is a whole pickle (its opcodes run to STOP), read without loading it:
    a write cut short by a kill leaves it empty or truncated."""
    import pickletools

    try:
        return any(op.name == "STOP" for op, _, _ in pickletools.genops(data))
    except (ValueError, IndexError):
        return False


def _max_steps(problem: Problem) -> int:
    """ASHA's ``max_t``: the training steps of a full proxy run."""
    config = getattr(problem.evaluator, "config", None)
    steps = getattr(config, "steps", 0) or getattr(config, "max_steps", 0)
    return int(steps) if steps else 0


def _scheduler(settings: RaySettings, problem: Problem) -> Any:
    if settings.scheduler == "none":
        return None
    from nas.experiment import ExperimentError

    evaluator = problem.evaluator
    max_t = _max_steps(problem)
    if evaluator is None or getattr(evaluator, "vectorised", True) or not max_t:
        name = getattr(evaluator, "name", "this evaluator")
        raise ExperimentError(
            f"search.ray.scheduler: asha needs intermediate losses (proxy_train), not {name}"
        )
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="step",
        metric="val_loss",
        mode="min",
        max_t=max_t,
        grace_period=min(settings.grace_steps, max_t),
        reduction_factor=settings.reduction_factor,
    )


def _make_sampler(seed_offset: int, *, settings: SearchSettings, constraints: bool) -> Any:
    """The sampler of ``search.sampler`` (module level: picklable inside a partial)."""
    from nas.search.optuna_backend import make_sampler

    return make_sampler(settings, seed_offset=seed_offset, has_constraints=constraints)


def _searcher(job: SearchJob, problem: Problem) -> Any:
    from ray.tune.search import ConcurrencyLimiter

    from nas.search.ray.sampler import RebuildingSampler
    from nas.search.ray.searcher import NasOptunaSearch

    # Tune pickles the searcher; NSGA-II's sampler holds a lock: pickle its recipe instead
    factory = partial(_make_sampler, settings=job.settings, constraints=bool(problem.constraints))
    search = NasOptunaSearch(
        space=SpaceFn(job.problem_factory),
        metric=objective_keys(len(problem.objectives)),
        mode=[o.direction for o in problem.objectives],
        sampler=RebuildingSampler(factory),
        study_name=job.study_name,
    )
    limit = job.settings.ray.concurrency or job.settings.workers
    return ConcurrencyLimiter(search, max_concurrent=limit)


def _tuner(job: SearchJob, problem: Problem, progress: ProgressFn | None) -> Any:
    from ray import tune

    from nas.search.ray.searcher import ProgressCallback, run_state

    settings = job.settings.ray
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, factory=job.problem_factory),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    path = tune_dir(job.run_dir, settings.storage)
    state = run_state(path, progress)
    callback = ProgressCallback(key=path, n_objectives=len(problem.objectives))
    if job.resume and tune.Tuner.can_restore(path):
        if "://" not in path:
            check_tune_state(Path(path))
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True), state
    parent, name = path.rsplit("/", 1)
    run_config = tune.RunConfig(
        name=name,
        storage_path=parent,
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        verbose=0,
        callbacks=[callback],
    )
    tune_config = tune.TuneConfig(
        search_alg=_searcher(job, problem),
        scheduler=_scheduler(settings, problem),
        num_samples=job.settings.trials,
        # one worker process serves trial after trial (a new actor per trial cost ~1.5 s
        # here, bench/bench_ray.py); a worker that died is replaced
        reuse_actors=True,
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config), state


class RayBackend(Backend):
    name = "ray"

    def run(self, job: SearchJob, *, progress: ProgressFn | None = None) -> pd.DataFrame:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # quiet: the run has its own progress
        # intermediate results (step, val_loss) carry no objective values: Tune must not
        # insist that every result names the searcher's metrics
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        problem = job.problem_factory()
        _scheduler(job.settings.ray, problem)  # reject asha on analytical evaluators early
        started = connect(job.settings.ray.address)
        try:
            tuner, state = _tuner(job, problem, progress)
            grid = tuner.fit()
            if len(grid) < job.settings.trials:
                # Tune stops on Ctrl-C and returns what it has (exit 0, "done"); it creates
                # every trial it runs, so fewer than asked means it was stopped: say so
                raise KeyboardInterrupt
            return self._frame(grid, n_objectives=len(problem.objectives), retries=state["retries"])
        finally:
            if started:
                import ray

                ray.shutdown()

    @staticmethod
    def _frame(grid: Any, *, n_objectives: int, retries: dict[str, int]) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for i, result in enumerate(grid):
            metrics = dict(result.metrics or {})
            trial_id = str(metrics.get("trial_id", result.path or i))
            error = ""
            if result.error is not None:
                error = f"{type(result.error).__name__}: {result.error}".strip().splitlines()[0]
            outcome = outcome_from_result(metrics, n_objectives=n_objectives, error=error)
            extra = {
                "trial_id": trial_id,
                "retries": retries.get(trial_id, 0),
                "node_id": str(metrics.get(NODE_KEY, "")),  # the Ray node that ran it
                "node_ip": str(metrics.get("node_ip", "")),
            }
            rows.append(
                row_from_result(
                    number=i,  # the result grid lists trials in creation order
                    outcome=outcome,
                    config=result.config or {},
                    duration_s=float(metrics.get("time_total_s", float("nan"))),
                    extra=extra,
                )
            )
        frame: pd.DataFrame = pd.DataFrame(frame_rows(rows))
        return frame
