"""What runs inside one Ray Tune trial, and how a finished trial becomes a row.

* :func:`run_trial` is the Tune function trainable: it rebuilds the problem in the worker,
  replays the sampled parameters on an Optuna ``FixedTrial`` (so ``Problem.suggest`` builds
  the same candidate the searcher saw) and evaluates it with
  :func:`nas.search.base.evaluate_trial`, the code path of the Optuna backend.
* A non-vectorised evaluator (``proxy_train``) gets a ``report`` callback that sends every
  intermediate validation loss to Tune as ``{"step", "val_loss"}``; the ASHA scheduler reads
  these and stops a poor trial by ending its worker (the callback never asks to prune).
* The last result of a trial carries ``nas_state`` (COMPLETE | FAIL | PRUNED), the trial
  record as JSON (``nas_record``), the constraint values and one ``nas_obj_<i>`` per
  objective, and the id of the Ray node it ran on (``nas_node_id``). A trial whose last
  result has no ``nas_state`` was stopped by the scheduler.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas.search.base import Problem, ProblemFactory, TrialOutcome, evaluate_trial, jsonable

__all__ = [
    "NODE_KEY",
    "STATE_KEY",
    "SpaceFn",
    "objective_keys",
    "outcome_from_result",
    "row_from_result",
    "run_trial",
]

STATE_KEY = "nas_state"
RECORD_KEY = "nas_record"
CONS_KEY = "nas_constraints"
REASON_KEY = "nas_fail_reason"
NODE_KEY = "nas_node_id"  # the Ray node id of the worker that ran the trial


def objective_keys(n: int) -> list[str]:
    """Result keys of the objectives (``nas_obj_0`` ...): no clash with Tune's own keys."""
    return [f"nas_obj_{i}" for i in range(n)]


class SpaceFn:
    """The define-by-run space of ``OptunaSearch``: ``Problem.suggest`` on the searcher's
    trial. Picklable (Tune pickles the searcher into its experiment checkpoint)."""

    def __init__(self, factory: ProblemFactory) -> None:
        self.factory = factory
        self._problem: Problem | None = None

    def __call__(self, trial: Any) -> None:
        if self._problem is None:
            self._problem = self.factory()
        self._problem.suggest(trial)

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory, "_problem": None}


class _Reporting:
    """Wraps an evaluator so that its intermediate losses reach Tune.

    The loss at the run's last step is not sent on its own: it arrives with the trial's
    final result, so a scheduler that stops trials at ``max_t`` cannot cut off the record."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def evaluate(self, arch: Any, *, tokens: float, report: Any = None) -> dict[str, float]:
        last = _last_step(self._inner, tokens)

        def to_tune(step: int, val_loss: float) -> bool:
            from ray import tune

            if step != last:
                tune.report({"step": int(step), "val_loss": float(val_loss)})
            return False  # ASHA stops a trial by ending its worker, not through this callback

        result: dict[str, float] = self._inner.evaluate(arch, tokens=tokens, report=to_tune)
        return result


def _last_step(evaluator: Any, tokens: float) -> int:
    """The number of steps a proxy run will take (-1 when the evaluator does not say)."""
    config = getattr(evaluator, "config", None)
    if config is None or not hasattr(config, "steps"):
        return -1
    from nas.evaluators.proxy_train import num_steps

    try:
        return int(num_steps(config, tokens))
    except Exception:  # the evaluator itself reports the bad setting
        return -1


def run_trial(config: dict[str, Any], *, factory: ProblemFactory) -> None:
    """The Tune trainable: evaluate the candidate of ``config`` and report the outcome."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.utils import flatten_dict

    problem = factory()
    evaluator = problem.evaluator
    if evaluator is not None and not getattr(evaluator, "vectorised", True):
        problem.evaluator = _Reporting(evaluator)
    # OptunaSearch nests parameter names that contain "/"; the problem expects them flat
    params = flatten_dict(dict(config), delimiter="/")
    outcome = evaluate_trial(problem, optuna.trial.FixedTrial(params))
    result = final_result(outcome, steps=outcome.record.get("steps"))
    result[NODE_KEY] = ray.get_runtime_context().get_node_id()
    tune.report(result)


def final_result(outcome: TrialOutcome, *, steps: object) -> dict[str, Any]:
    """The last result of a trial (see the module docstring)."""
    out: dict[str, Any] = {
        STATE_KEY: outcome.state,
        RECORD_KEY: json.dumps(jsonable(outcome.record)),
        CONS_KEY: json.dumps(list(outcome.constraints)),
        REASON_KEY: outcome.fail_reason,
    }
    out.update(zip(objective_keys(len(outcome.values)), outcome.values, strict=True))
    if isinstance(steps, (int, float)) and math.isfinite(steps):
        out["step"] = int(steps)
    if "loss" in outcome.record and outcome.state == "COMPLETE":
        out["val_loss"] = float(outcome.record["loss"])
    return out


def outcome_from_result(
    result: Mapping[str, Any] | None, *, n_objectives: int, error: str = ""
) -> TrialOutcome:
    """The :class:`TrialOutcome` of a trial from its last Tune result (``error``: the
    reason when Tune gave up on it after its retries)."""
    result = result or {}
    if error:
        return TrialOutcome(state="FAIL", record={}, fail_reason=error)
    state = result.get(STATE_KEY)
    if state is None:  # stopped by the scheduler between two intermediate results
        step, loss = result.get("step"), result.get("val_loss")
        record = {"steps": step, "val_loss": loss} if step is not None else {}
        reason = f"stopped by ASHA at step {step} (val loss {float(loss or math.nan):.4f})"
        return TrialOutcome(state="PRUNED", record=record, fail_reason=reason)
    record = json.loads(result.get(RECORD_KEY, "{}"))
    values = tuple(float(result[k]) for k in objective_keys(n_objectives) if k in result)
    cons = tuple(float(c) for c in json.loads(result.get(CONS_KEY, "[]")))
    return TrialOutcome(
        state=str(state),
        record=record,
        values=values if state == "COMPLETE" else (),
        constraints=cons,
        fail_reason=str(result.get(REASON_KEY, "")),
    )


def row_from_result(
    *,
    number: int,
    outcome: TrialOutcome,
    config: Mapping[str, Any],
    duration_s: float,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """One row of ``trials.parquet`` in the Optuna backend's layout
    (:func:`nas.search.optuna_backend.trials_frame`)."""
    row: dict[str, Any] = {
        "number": number,
        "state": outcome.state,
        "duration_s": duration_s,
        "feasible": bool(outcome.state == "COMPLETE" and all(c <= 0 for c in outcome.constraints)),
        "fail_reason": outcome.fail_reason,
    }
    row.update({f"param_{k}": v for k, v in config.items()})
    row.update({k: v for k, v in outcome.record.items() if k not in row})
    row.update({k: v for k, v in extra.items() if k not in row})
    return row


def frame_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by trial number."""
    return sorted(rows, key=lambda r: int(r["number"]))
