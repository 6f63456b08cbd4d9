"""The Optuna backend and the exhaustive backend on the synthetic toy problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.experiment import SearchSettings
from nas.search.base import BackendUnavailable, GridProblem, Problem, SearchJob, get_backend
from nas.search.pareto import hypervolume, non_dominated
from nas.search.toy import ToyProblem, toy_grid


def _run(tmp_path: Path, factory, **settings) -> object:
    job = SearchJob(
        problem_factory=factory,
        settings=SearchSettings(**settings),
        run_dir=tmp_path,
        study_name="toy",
    )
    return get_backend(settings.get("backend", "optuna")).run(job)


def test_failing_and_nan_trials_fail_with_reason_and_search_goes_on(tmp_path: Path) -> None:
    frame = _run(tmp_path, lambda: ToyProblem(fail_every=5, nan_every=7), trials=30)
    assert sorted(frame["number"]) == list(range(30))
    failed = frame[frame["state"] == "FAIL"]
    reasons = set(failed["fail_reason"])
    assert any("toy failure" in r for r in reasons)
    assert any("not finite" in r for r in reasons)
    assert (frame["state"] == "COMPLETE").sum() == 30 - len(failed) > 15


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "random"])
def test_same_seed_same_trials(tmp_path: Path, sampler: str) -> None:
    a = _run(tmp_path / "a", ToyProblem, trials=25, seed=3, sampler=sampler)
    b = _run(tmp_path / "b", ToyProblem, trials=25, seed=3, sampler=sampler)
    c = _run(tmp_path / "c", ToyProblem, trials=25, seed=4, sampler=sampler)
    cols = ["param_x", "param_y"]
    assert a[cols].to_numpy().tolist() == b[cols].to_numpy().tolist()
    assert a[cols].to_numpy().tolist() != c[cols].to_numpy().tolist()


def test_constraints_reach_optuna_and_mark_feasibility(tmp_path: Path) -> None:
    frame = _run(tmp_path, lambda: ToyProblem(constrained=True), trials=20)
    ok = frame[frame["state"] == "COMPLETE"]
    assert (ok["feasible"] == (ok["f1"] >= 0.1)).all()


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_workers_finish_exactly_the_requested_trials(tmp_path: Path, storage: str) -> None:
    frame = _run(
        tmp_path,
        lambda: ToyProblem(delay_s=0.01),
        trials=24,
        workers=2,
        storage=storage,
        sampler="random",
    )
    assert sorted(frame["number"]) == list(range(24))
    assert (frame["state"] == "COMPLETE").all()
    assert frame[["param_x", "param_y"]].notna().all().all()


def test_exhaustive_returns_the_exact_front(tmp_path: Path) -> None:
    frame = _run(tmp_path, lambda: ToyProblem(levels=51), backend="exhaustive")
    assert len(frame) == 51 * 51
    grid = toy_grid(51)
    exact = non_dominated(np.column_stack([grid["f1"], grid["f2"]]))
    assert frame["on_front"].sum() == exact.sum() == 51  # ZDT1 front: y = 0, every x
    assert set(frame.loc[frame["on_front"], "y"]) == {0}


def test_exhaustive_refuses_large_grids_with_the_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="10,201 candidates exceed 1,000"):
        _run(tmp_path, ToyProblem, backend="exhaustive", max_candidates=1000)


class _NoGrid:
    """A problem that can only evaluate one candidate at a time."""

    def __init__(self) -> None:
        toy = ToyProblem()
        self.objectives, self.constraints, self.evaluator = toy.objectives, (), None
        self.suggest, self.evaluate = toy.suggest, toy.evaluate
        self.device_memory_bytes = toy.device_memory_bytes


def test_exhaustive_refuses_a_problem_without_a_grid(tmp_path: Path) -> None:
    assert isinstance(_NoGrid(), Problem) and not isinstance(_NoGrid(), GridProblem)
    assert isinstance(ToyProblem(), GridProblem)
    with pytest.raises(BackendUnavailable, match="vectorised grid evaluation"):
        _run(tmp_path, _NoGrid, backend="exhaustive")


@pytest.mark.slow
def test_nsga2_approaches_the_exact_front(tmp_path: Path) -> None:
    grid = toy_grid(101)
    pts = np.column_stack([grid["f1"], grid["f2"]])
    ref = pts.max(axis=0) * 1.1
    frame = _run(tmp_path, ToyProblem, trials=300, seed=0, population_size=30)
    found = frame[["f1", "f2"]].to_numpy(dtype=float)
    rnd = _run(tmp_path / "r", ToyProblem, trials=300, seed=0, sampler="random")
    ratio = hypervolume(found, ref) / hypervolume(pts, ref)
    ratio_random = hypervolume(rnd[["f1", "f2"]].to_numpy(dtype=float), ref) / hypervolume(pts, ref)
    assert ratio > 0.95
    assert ratio > ratio_random


def test_the_last_seed_with_several_workers_wraps_instead_of_crashing() -> None:
    """Worker i seeds with seed + i; at seed 2^32 - 1 the second worker's seed wrapped past
    numpy's range and every worker died (exit 1)."""
    from nas.experiment import SearchSettings
    from nas.search.optuna_backend import make_sampler

    settings = SearchSettings(sampler="nsga2", trials=4, seed=2**32 - 1, population_size=4)
    for offset in (0, 1, 2):
        assert make_sampler(settings, seed_offset=offset, has_constraints=False) is not None
