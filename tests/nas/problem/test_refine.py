"""The exhaustive backend re-plans the leading rows of its grid with the full planner
(``search.replan_rows``, ``plan: auto`` only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nas.experiment import experiment_from_dict
from nas.problem import Candidate, ExperimentProblem
from nas.problem.refine import leading_rows, refine_rows
from nas.runs import start_run
from nas.search.base import GridProblem
from nas.search.exhaustive import judge_grid

SMALL: dict[str, Any] = {
    "name": "replan",
    "space": "dense_decoder",
    "space_overrides": {"num_layers": [16, 24], "d_model": [2048, 3072]},
    "hardware": {"system": "dgx-h100", "num_devices": 16},
    "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 2097152, "tokens": 1e11},
    "objectives": {"loss": "min", "step_time_s": "min"},
    "constraints": {"fits": True},
    "search": {"backend": "exhaustive", "replan_rows": 16},
}


def test_replanned_rows_match_the_per_candidate_planner_and_are_no_slower() -> None:
    problem = ExperimentProblem(experiment_from_dict(SMALL))
    assert isinstance(problem, GridProblem)  # what the exhaustive backend asks for
    grid = judge_grid(problem, problem.evaluate_grid(max_candidates=10**6))
    rows = leading_rows(grid, objectives=problem.objectives, limit=16)
    assert len(rows) == 16
    assert grid["feasible"].to_numpy()[rows].all()
    before = grid["step_time_s"].to_numpy()[rows].copy()
    points = problem.hardware_points()
    evaluate = problem.evaluate
    assert refine_rows(grid, rows, space=problem.space, points=points, evaluate=evaluate) == 16
    after = grid["step_time_s"].to_numpy()[rows]
    assert np.all(after <= before * (1 + 1e-9))  # the plan set is inside the planner's space
    # each re-planned row now holds what the Optuna path would record for that candidate
    row = grid.iloc[rows[0]]
    params = {
        c.removeprefix("param_"): row[c].item() for c in grid.columns if c.startswith("param_")
    }
    arch = problem.space.to_architecture(params)
    record = problem.evaluate(Candidate(arch=arch, hardware=problem.hardware_points()[0]))
    assert row["step_time_s"] == record["step_time_s"]
    assert row["plan_micro_batch"] == record["plan_micro_batch"]


def test_run_summary_counts_replanned_rows_and_fixed_plans_skip_it(tmp_path: Path) -> None:
    auto = start_run(experiment_from_dict(SMALL), out=tmp_path / "auto")
    summary = json.loads((auto.run_dir / "summary.json").read_text())
    assert summary["replanned_rows"] == 16
    fixed = experiment_from_dict({**SMALL, "plan": {"mode": "fixed", "fixed": {"tp": 8}}})
    run = start_run(fixed, out=tmp_path / "fixed")
    assert json.loads((run.run_dir / "summary.json").read_text())["replanned_rows"] == 0
