"""The run's hypervolume scale is fixed before the search: the progress bar never goes down
and ends at summary.json's value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.experiment import experiment_from_dict, load_experiment
from nas.runs import LiveFront, live_front, start_run
from nas.search.base import Objective, TrialOutcome
from nas.search.hv_scale import FREEZE_AFTER

ROOT = Path(__file__).resolve().parents[2]
OBJ = (Objective(metric="a", direction="min"), Objective(metric="b", direction="max"))


def test_live_hypervolume_never_decreases_and_waits_for_its_scale() -> None:
    rng = np.random.default_rng(0)
    live = LiveFront(OBJ)
    seen: list[float] = []
    for i in range(300):
        # later trials spread wider than the first ones: a re-normalised value would drop
        a, b = rng.random(2) * (1 + i / 30)
        live.add(TrialOutcome(state="COMPLETE", record={}, values=(a, b)))
        if i < FREEZE_AFTER - 1:
            assert live.hypervolume is None
        else:
            assert live.hypervolume is not None
            seen.append(live.hypervolume)
    assert np.all(np.diff(seen) >= 0) and seen[-1] > seen[0]
    assert live.scale is not None and live.scale.source == "first feasible trials"


def test_infeasible_and_failed_trials_add_nothing() -> None:
    live = LiveFront(OBJ)
    for _ in range(FREEZE_AFTER):
        live.add(TrialOutcome(state="COMPLETE", record={}, values=(1.0, 1.0), constraints=(0.5,)))
        live.add(TrialOutcome(state="FAIL", record={}, fail_reason="x"))
    assert live.front_size == 0 and live.hypervolume is None and live.failed == FREEZE_AFTER


@pytest.mark.slow
def test_progress_bar_ends_at_the_summary_value(tmp_path: Path) -> None:
    data = load_experiment(ROOT / "experiments" / "quickstart.yaml").model_dump(mode="json")
    data["search"].update(trials=16, population_size=8)
    data["references"] = []
    exp = experiment_from_dict(data, source="test")
    live = live_front(exp)
    assert live.scale is not None and live.scale.source == "space corners"
    values: list[float] = []

    def progress(outcome: TrialOutcome) -> None:
        live.add(outcome)
        if live.hypervolume is not None:
            values.append(live.hypervolume)

    summary = start_run(exp, out=tmp_path / "run", progress=progress).summary
    assert values and np.all(np.diff(values) >= 0)
    assert summary["hypervolume_reference"]["source"] == "space corners"
    assert summary["hypervolume"] == pytest.approx(values[-1], rel=1e-12)
