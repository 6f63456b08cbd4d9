"""Every sampler the schema accepts on the ray backend of the local cluster (trials reduced).
NSGA-II, which Tune could not pickle before (issue 15), and random are run by the shipped
experiments (``test_ray_submit.py::test_every_experiment_as_a_job``); the others here."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from nas.experiment import SearchSettings, load_experiment
from nas.runs import start_run, with_overrides

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
SAMPLERS = typing.get_args(SearchSettings.model_fields["sampler"].annotation)


def _ray(path: Path, *, trials: int, sampler: str | None = None) -> object:
    exp = with_overrides(load_experiment(path), trials=trials, backend="ray")
    data = exp.model_dump(mode="json")
    data["references"] = data["references"][:1]  # the references are not what is tested
    if sampler is not None:
        data["search"]["sampler"] = sampler
    from nas.experiment import experiment_from_dict

    return experiment_from_dict(data)


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s not in ("nsga2", "random")])
def test_every_sampler_runs_on_ray(sampler: str, ray_driver, tmp_path: Path) -> None:
    exp = _ray(ROOT / "experiments" / "quickstart.yaml", trials=4, sampler=sampler)
    result = start_run(exp, out=tmp_path / "run")
    assert result.summary["complete"] == 4, result.trials[["state", "fail_reason"]]
    assert result.summary["front_size"] >= 1
