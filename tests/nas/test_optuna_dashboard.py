"""optuna-dashboard reads a real constrained run as `nas runs show` does: objective names,
one sortable user attribute per metric, constraint values where Optuna and the dashboard
look for them, and the same feasible Pareto front."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pandas as pd
import pytest

from nas.experiment import experiment_from_dict, load_experiment
from nas.runs import start_run
from nas.search.pareto import non_dominated, to_minimisation

ROOT = Path(__file__).resolve().parents[2]


def constrained_run(out: Path) -> Path:
    """The quickstart experiment, 30 trials, with a memory constraint about half the trials
    break (measured: memory/device ranges 0.57-0.97 in these trials)."""
    data = load_experiment(ROOT / "experiments" / "quickstart.yaml").model_dump(mode="json")
    data["constraints"] = {"fits": True, "memory_per_device_bytes": "<= 0.8 * device"}
    data["search"].update(trials=30, population_size=10)
    data["references"] = []
    return start_run(experiment_from_dict(data, source="test"), out=out).run_dir


def _get(app: Any, path: str) -> Any:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _h, *_: status.append(s)))
    assert status[0].startswith("200"), (path, status, body[:200])
    return json.loads(body)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return constrained_run(tmp_path_factory.mktemp("optuna-dash") / "run")


def test_optuna_dashboard_front_equals_runs_show(run_dir: Path) -> None:
    dashboard = pytest.importorskip("optuna_dashboard")
    app = dashboard.wsgi(f"sqlite:///{run_dir / 'study.db'}")
    (study_id,) = [s["study_id"] for s in _get(app, "/api/studies")["study_summaries"]]
    detail = _get(app, f"/api/studies/{study_id}")
    assert detail["objective_names"] == ["loss", "params_total"]
    sortable = {a["key"] for a in detail["union_user_attrs"] if a["sortable"]}
    assert {"memory_per_device_bytes", "step_time_s", "mfu", "tokens_per_s"} <= sortable
    done = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert all(len(t["constraints"]) == 2 for t in done)
    # the dashboard's Pareto-front plot: feasible (every constraint <= 0) and non-dominated
    feasible = [t for t in done if all(c <= 0 for c in t["constraints"])]
    assert 0 < len(feasible) < len(done)  # the constraint bites: a real test of feasibility
    values = to_minimisation([t["values"] for t in feasible], ["min", "min"])
    dash_front = {t["number"] for t, on in zip(feasible, non_dominated(values), strict=True) if on}
    shown = set(pd.read_csv(run_dir / "pareto.csv")["number"])
    assert dash_front == shown


def test_optuna_reads_the_constraints_and_their_names(run_dir: Path) -> None:
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{run_dir / 'study.db'}")
    assert study.metric_names == ["loss", "params_total"]
    assert study.user_attrs["constraints"] == [
        "fits == 1",
        "memory_per_device_bytes <= 0.8 * device",
    ]
    shown = set(pd.read_csv(run_dir / "pareto.csv")["number"])
    assert {t.number for t in study.best_trials} == shown
    trials = pd.read_parquet(run_dir / "trials.parquet")
    ok = trials[trials["state"] == "COMPLETE"]
    ratio = ok["memory_per_device_bytes"] / ok["device_memory_bytes"]
    assert (ok["feasible"] == (ratio <= 0.8)).all()
