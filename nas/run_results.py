"""The results of a run: its Pareto front, ``summary.json`` and the live front of the progress
bar (``nas.runs`` drives the search and calls these when it ends).

* ``front_frame``: the feasible, completed, non-dominated trials (``pareto.csv``).
* ``summarise``: counts, front size and the normalised hypervolume (``summary.json``).
* ``LiveFront``: the progress bar's front and hypervolume in the scale the summary uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.experiment import Experiment
from nas.jsonsafe import plain_value
from nas.rundir import atomic_write, atomic_write_json, write_parquet
from nas.search.base import Objective, TrialOutcome
from nas.search.hv_scale import FREEZE_AFTER, HypervolumeScale, data_scale
from nas.search.pareto import non_dominated, objective_matrix, to_minimisation

__all__ = ["LiveFront", "front_frame", "summarise", "write_results"]


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


def summarise(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    *,
    scale: HypervolumeScale | None = None,
) -> dict[str, Any]:
    """Counts, front size, normalised hypervolume in ``scale`` (default: best and worst of
    the first feasible trials, as the progress bar fixes it), best trial per objective."""
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
    out["front_size"] = int(non_dominated(values).sum())
    first = values[np.argsort(ok["number"].to_numpy(), kind="stable")[:FREEZE_AFTER]]
    scale = scale or data_scale(first, source="first feasible trials")
    if scale is not None:
        out["hypervolume"] = scale.hypervolume(values)
        out["hypervolume_reference"] = scale.describe(objectives)
    for i, o in enumerate(objectives):
        row = ok.iloc[int(np.argmin(values[:, i]))]
        params = {k: plain_value(v) for k, v in row.items() if str(k).startswith("param_")}
        out["best"][o.metric] = {
            "value": plain_value(row[o.metric]),
            "number": int(row["number"]),
            **params,
        }
    return out


def write_results(
    run_dir: Path,
    experiment: Experiment,
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    *,
    scale: HypervolumeScale | None,
) -> dict[str, Any]:
    atomic_write(run_dir / "trials.parquet", partial(write_parquet, frame))
    front = front_frame(frame, objectives)
    atomic_write(run_dir / "pareto.csv", lambda tmp: front.to_csv(tmp, index=False))
    summary = summarise(frame, objectives, scale=scale)
    summary = {"name": experiment.name, "backend": experiment.search.backend, **summary}
    summary.update({str(k): plain_value(v) for k, v in frame.attrs.items()})
    atomic_write_json(run_dir / "summary.json", summary)  # non-finite numbers become null
    return summary


class LiveFront:
    """Front size and hypervolume while a search runs (for the progress bar), in a scale
    fixed before the first trial (``scale``) or by the first :data:`FREEZE_AFTER` feasible
    trials, so the hypervolume never goes down (``None`` until the scale is fixed)."""

    def __init__(
        self, objectives: Sequence[Objective], *, scale: HypervolumeScale | None = None
    ) -> None:
        self.objectives = tuple(objectives)
        self.scale = scale
        self.front = np.empty((0, len(self.objectives)))  # minimisation values
        self.first: list[tuple[float, ...]] = []  # feasible values until the scale is fixed
        self.done = 0
        self.failed = 0
        self.front_size = 0
        self.hypervolume: float | None = None

    def add(self, outcome: TrialOutcome) -> None:
        self.done += 1
        if outcome.state != "COMPLETE":
            self.failed += 1
            return
        if not all(c <= 0 for c in outcome.constraints):
            return
        point = to_minimisation([outcome.values], [o.direction for o in self.objectives])
        merged = np.vstack([self.front, point])
        self.front = merged[non_dominated(merged)]
        self.front_size = len(self.front)
        if self.scale is None:
            self.first.append(tuple(point[0]))
            if len(self.first) >= FREEZE_AFTER:
                self.scale = data_scale(np.array(self.first), source="first feasible trials")
        if self.scale is not None:
            self.hypervolume = self.scale.hypervolume(self.front)
