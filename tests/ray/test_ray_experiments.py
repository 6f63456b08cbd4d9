"""Every shipped experiment, and every sampler the schema accepts, on the ray backend of the
local cluster (trials reduced). Five of the seven files use NSGA-II, whose sampler Tune
could not pickle before (issue 15)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from nas.experiment import SearchSettings, load_experiment
from nas.runs import start_run, with_overrides

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
SAMPLERS = typing.get_args(SearchSettings.model_fields["sampler"].annotation)


def _ray(path: Path, *, trials: int, sampler: str | None = None) -> object:
    exp = with_overrides(load_experiment(path), trials=trials, backend="ray")
    data = exp.model_dump(mode="json")
    data["references"] = data["references"][:1]  # the references are not what is tested
    if sampler is not None:
        data["search"]["sampler"] = sampler
    from nas.experiment import experiment_from_dict

    return experiment_from_dict(data)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_runs_on_ray(path: Path, ray_driver, tmp_path: Path) -> None:
    trials = 2 if path.stem == "proxy-train" else 3  # real training: ~10 s a trial here
    result = start_run(_ray(path, trials=trials), out=tmp_path / "run")
    frame = result.trials
    assert len(frame) == trials, frame
    assert (frame["state"] != "FAIL").all(), frame[["state", "fail_reason"]]
    assert result.summary["backend"] == "ray" and result.summary["trials"] == trials
    assert frame["node_id"].str.len().gt(0).all()


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s not in ("nsga2", "random")])
def test_every_sampler_runs_on_ray(sampler: str, ray_driver, tmp_path: Path) -> None:
    """nsga2 and random are covered by the shipped experiments above."""
    exp = _ray(ROOT / "experiments" / "quickstart.yaml", trials=4, sampler=sampler)
    result = start_run(exp, out=tmp_path / "run")
    assert result.summary["complete"] == 4, result.trials[["state", "fail_reason"]]
    assert result.summary["front_size"] >= 1
