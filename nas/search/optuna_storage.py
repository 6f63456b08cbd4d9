"""How a run's trials are written into an Optuna study, so Optuna and optuna-dashboard read
them natively.

* objectives named with ``study.set_metric_names`` (the dashboard's axis and column titles);
* every metric of the trial record as its own user attribute (sortable and plottable in the
  dashboard, ``trial.user_attrs["step_time_s"]`` in Python);
* constraint values as the trial's system attribute ``constraints``, a list with <= 0
  feasible: what Optuna's samplers store from ``constraints_func`` and what
  ``Trial.constraints``, ``study.best_trials`` and optuna-dashboard's feasibility read;
* the constraints' names, in the same order, as the study's user attribute ``constraints``.

Runs written before held the record as one JSON user attribute ``record`` and the constraint
values as the user attribute ``constraints``; :func:`trial_record` and
:func:`trial_constraints` read both forms.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    from nas.search.base import Problem

__all__ = [
    "CONSTRAINTS_ATTR",
    "FAIL_REASON",
    "INTERRUPTED",
    "name_study",
    "set_constraints",
    "set_metrics",
    "trial_constraints",
    "trial_record",
]

CONSTRAINTS_ATTR = "constraints"  # Optuna's key (optuna/study/_constrained_optimization.py)
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
_LEGACY_RECORD = "record"
_NOT_METRICS = frozenset({INTERRUPTED, FAIL_REASON, _LEGACY_RECORD, CONSTRAINTS_ATTR})


def trial_constraints(trial: FrozenTrial) -> list[float]:
    """The trial's constraint values (<= 0 feasible); [] when it has none."""
    values = trial.system_attrs.get(CONSTRAINTS_ATTR)
    if values is None:
        values = trial.user_attrs.get(CONSTRAINTS_ATTR)  # runs written before
    return [float(v) for v in values] if values is not None else []


def trial_record(trial: FrozenTrial) -> dict[str, Any]:
    """The trial record: its metric user attributes (or the JSON ``record`` of old runs)."""
    record: dict[str, Any] = json.loads(trial.user_attrs.get(_LEGACY_RECORD, "{}"))
    record.update({k: v for k, v in trial.user_attrs.items() if k not in _NOT_METRICS})
    return record


def set_constraints(trial: optuna.Trial, values: Sequence[float]) -> None:
    """Store the constraint values where Optuna's samplers put them."""
    trial.storage.set_trial_system_attr(
        trial._trial_id, CONSTRAINTS_ATTR, [float(v) for v in values]
    )


def set_metrics(trial: optuna.Trial, record: Mapping[str, Any]) -> None:
    """Each metric of a JSON-ready record as its own user attribute of a new trial.

    One INSERT of all rows on SQL storage: per-attribute ``set_user_attr`` costs a query and a
    commit each (72 metrics: 82 ms per trial against 28 ms in one insert, measured on this
    machine with SQLite in WAL mode); other storages take them one by one."""
    reserved = _NOT_METRICS.intersection(record)
    if reserved:
        raise ValueError(f"trial record: metric names {sorted(reserved)} are reserved")
    if not _bulk_insert(trial, record):
        for key, value in record.items():
            trial.set_user_attr(key, value)


def _bulk_insert(trial: optuna.Trial, record: Mapping[str, Any]) -> bool:
    storage = trial.storage
    backend = getattr(storage, "_backend", storage)  # unwrap Optuna's _CachedStorage
    if not isinstance(backend, optuna.storages.RDBStorage):
        return False
    try:
        from optuna.storages._rdb import models
    except ImportError:  # a future Optuna that moved its models: take the public path
        return False
    rows = [
        models.TrialUserAttributeModel(
            trial_id=trial._trial_id, key=key, value_json=json.dumps(value)
        )
        for key, value in record.items()
    ]
    session = backend.scoped_session()
    try:
        session.add_all(rows)
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
    return True


def name_study(study: optuna.Study, problem: Problem) -> None:
    """Objective names (``study.metric_names``) and constraint names (study user attribute
    ``constraints``, in the order of each trial's constraint values)."""
    names = [o.metric for o in problem.objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():  # experimental since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    described = [c.describe() for c in problem.constraints]
    if study.user_attrs.get(CONSTRAINTS_ATTR) != described:
        study.set_user_attr(CONSTRAINTS_ATTR, described)
