"""Reference models: catalogue models evaluated under the experiment's workload, so a run's
front can be read against known models (``references.parquet``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hw_profiles.types import System
from nas.experiment import Experiment
from nas.problem.hardware import HardwarePoint
from nas.problem.record import Candidate, evaluate_candidate

if TYPE_CHECKING:
    from nas.evaluators import Evaluator

__all__ = ["evaluate_references"]


def evaluate_references(
    names: Sequence[str] | None,
    *,
    experiment: Experiment,
    systems: Mapping[str, System],
    evaluator: Evaluator,
) -> pd.DataFrame:
    """Catalogue models (``names``, or all of them when None) on every base system (knobs
    at 1), one row each; the plan is the experiment's fixed degrees, else the planner's
    choice. A model that cannot run there is a row with its ``fail_reason``."""
    from search_spaces.catalogue import list_models, load_model

    rows = []
    for name in names if names is not None else list_models():
        arch = load_model(name)
        for system_name, system in systems.items():
            point = HardwarePoint(system=system, base_name=system_name, scales={}, cost_index=1.0)
            row: dict[str, Any] = {"name": name}
            try:
                fixed = {str(k): v for k, v in experiment.plan.fixed.items()}
                cand = Candidate(arch=arch, hardware=point, plan=fixed)
                row.update(evaluate_candidate(cand, experiment=experiment, evaluator=evaluator))
                row["fail_reason"] = ""
            except Exception as exc:  # a reference that cannot run here is listed as such
                row.update({"system": system_name, "fail_reason": f"{type(exc).__name__}: {exc}"})
            rows.append(row)
    table: pd.DataFrame = pd.DataFrame(rows)
    return table
