"""The exhaustive backend reports its progress chunk by chunk (the CLI draws a bar from it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.experiment import experiment_from_dict, load_experiment
from nas.problem import grid_eval
from nas.runs import start_run

ROOT = Path(__file__).resolve().parents[3]


def test_exhaustive_reports_every_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_experiment(ROOT / "experiments" / "exhaustive-dense.yaml").model_dump(mode="json")
    data["space_overrides"] = {"num_layers": [8, 24], "d_model": [1024, 4096]}
    data["references"] = []
    monkeypatch.setattr(grid_eval, "CHUNK", 500)
    calls: list[tuple[int, int]] = []
    result = start_run(
        experiment_from_dict(data, source="test"),
        out=tmp_path / "run",
        grid_progress=lambda done, total: calls.append((done, total)),
    )
    evaluated = result.summary["candidates_evaluated"]
    assert len(calls) == -(-evaluated // 500) > 1
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (evaluated, evaluated)
