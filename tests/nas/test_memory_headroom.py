"""One memory headroom: experiments' `fits` (and so the `fits: true` constraint) use
hardware.memory_headroom, default 0.9 as in `nas estimate`."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.experiment import ExperimentError, experiment_from_dict, load_experiment
from nas.explain import MEMORY_HEADROOM
from nas.problem import ExperimentProblem

ROOT = Path(__file__).resolve().parents[2]


def _records(headroom: float | None) -> list[dict[str, object]]:
    data = load_experiment(ROOT / "experiments" / "quickstart.yaml").model_dump(mode="json")
    if headroom is not None:
        data["hardware"]["memory_headroom"] = headroom
    problem = ExperimentProblem(experiment_from_dict(data, source="test"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(12):
        out.append(problem.evaluate(problem.suggest(study.ask())))
    return out


def test_fits_uses_the_experiment_headroom() -> None:
    assert MEMORY_HEADROOM == 0.9
    for headroom in (None, 1.0):
        limit = headroom or MEMORY_HEADROOM
        for r in _records(headroom):
            ratio = float(r["memory_per_device_bytes"]) / float(r["device_memory_bytes"])  # type: ignore[arg-type]
            assert r["fits"] == (ratio <= limit)


def test_headroom_out_of_range_is_refused() -> None:
    data = load_experiment(ROOT / "experiments" / "quickstart.yaml").model_dump(mode="json")
    data["hardware"]["memory_headroom"] = 1.5
    with pytest.raises(ExperimentError, match="memory_headroom"):
        experiment_from_dict(data, source="test")
