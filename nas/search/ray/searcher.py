"""Tune plug-ins of the Ray backend: the multi-objective Optuna searcher and a progress hook.

Imported only by :mod:`nas.search.ray.backend` once Ray is known to be installed.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.search.optuna import OptunaSearch

from nas.search.base import ProgressFn
from nas.search.ray.trial import outcome_from_result

__all__ = ["NasOptunaSearch", "ProgressCallback", "run_state"]


class NasOptunaSearch(OptunaSearch):  # type: ignore[misc]
    """``OptunaSearch`` that tells the study what really happened to a trial.

    Tune's version tells a multi-objective trial COMPLETE even when its last result is an
    intermediate one (stopped by ASHA) or a failure; here the trial's ``nas_state`` decides
    (COMPLETE with its values and constraints, FAIL, or PRUNED when the scheduler stopped it).
    """

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        from optuna.trial import TrialState

        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial, study = self._ot_trials[trial_id], self._ot_study
        assert study is not None, "set up by OptunaSearch before the first trial"
        n = len(self._metric) if isinstance(self._metric, list) else 1
        outcome = outcome_from_result(result, n_objectives=n, error="worker died" if error else "")
        if outcome.state == "COMPLETE":
            ot_trial.set_user_attr("constraints", list(outcome.constraints))
            if hasattr(ot_trial, "set_constraint"):
                for i, value in enumerate(outcome.constraints):
                    ot_trial.set_constraint(f"c{i}", value)
            study.tell(ot_trial, list(outcome.values))
        else:
            state = TrialState.PRUNED if outcome.state == "PRUNED" else TrialState.FAIL
            study.tell(ot_trial, state=state)
        self._completed_trials.add(trial_id)


# Per-run state the callback reaches by key: Tune pickles its callbacks into the experiment
# state (tuner.pkl), and a progress function (a live progress bar) is not picklable; a
# restored callback finds the new process's state under the same key.
_RUNS: dict[str, dict[str, Any]] = {}


def run_state(key: str, progress: ProgressFn | None = None) -> dict[str, Any]:
    """The progress function and retry counts of the run ``key`` (its Tune directory)."""
    state = _RUNS.setdefault(key, {"progress": None, "retries": {}})
    if progress is not None:
        state["progress"] = progress
    return state


class ProgressCallback(Callback):  # type: ignore[misc]
    """Reports each finished trial to the run's progress function; counts worker retries."""

    def __init__(self, *, key: str, n_objectives: int) -> None:
        self.key = key
        self.n_objectives = n_objectives

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        retries = run_state(self.key)["retries"]
        retries[trial.trial_id] = retries.get(trial.trial_id, 0) + 1

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._report(trial.last_result, "")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._report(trial.last_result, "worker died after its retries")

    def _report(self, result: dict[str, Any] | None, error: str) -> None:
        progress = run_state(self.key)["progress"]
        if progress is not None:
            progress(outcome_from_result(result, n_objectives=self.n_objectives, error=error))
