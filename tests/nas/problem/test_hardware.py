"""Hardware co-design knobs, the record flattening, and the real exhaustive path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from hw_profiles.loader import load_system
from nas.experiment import ExperimentError, experiment_from_dict, load_experiment
from nas.problem import ExperimentProblem, flatten_report
from nas.problem.hardware import hardware_grid, scale_system
from nas.runs import start_run
from nas.search.pareto import non_dominated

ROOT = Path(__file__).resolve().parents[3]


def test_scale_system_scales_each_knob_and_only_the_named_tier() -> None:
    base = load_system("dgx-h100", num_devices=8)
    scaled = scale_system(
        base,
        peak_flops=2.0,
        memory_bandwidth=1.5,
        memory_size=0.5,
        link_bandwidth={"nvlink4": 0.25},
    )
    assert scaled.device.peak("bf16") == pytest.approx(2.0 * base.device.peak("bf16"))
    assert scaled.device.memory_bandwidth_bytes_per_s == pytest.approx(
        1.5 * base.device.memory_bandwidth_bytes_per_s
    )
    assert scaled.device.memory_bytes == pytest.approx(0.5 * base.device.memory_bytes)
    assert scaled.tiers[0].bandwidth_bytes_per_s == pytest.approx(
        0.25 * base.tiers[0].bandwidth_bytes_per_s
    )
    assert scaled.tiers[1].bandwidth_bytes_per_s == base.tiers[1].bandwidth_bytes_per_s
    assert base.device.memory_bytes == 80e9  # the profile itself is untouched


def _codesign(**hardware: object) -> ExperimentProblem:
    exp = experiment_from_dict(
        {
            "name": "cd",
            "space": "dense_decoder",
            "hardware": {"system": ["dgx-h100", "h100-pcie-8"], "num_devices": 8, **hardware},
            "workload": {
                "mode": "train",
                "seq_len": 2048,
                "global_batch_tokens": 1048576,
                "tokens": 1e10,
            },
            "objectives": {"step_time_s": "min", "hw_cost_index": "min"},
        }
    )
    return ExperimentProblem(exp)


def test_hardware_grid_and_cost_index() -> None:
    problem = _codesign(
        knobs={"peak_flops_scale": [1.0, 2.0], "link_bandwidth_scale": {"nvlink4": [0.5, 1.0]}},
        cost_exponents={"peak_flops": 1.0, "link_bandwidth": 0.5},
    )
    points = hardware_grid(problem.experiment.hardware, problem.systems)
    assert len(points) == 2 * 2 + 2  # the PCIe box has no nvlink4 tier: its knob collapses
    by_key = {
        (p.base_name, p.scales["hw_peak_flops_scale"], p.scales["hw_link_nvlink4_scale"]): p
        for p in points
    }
    assert by_key[("dgx-h100", 2.0, 0.5)].cost_index == pytest.approx(2.0 * 0.5**0.5)
    # a knob on a tier the PCIe box lacks does not apply to it, and costs nothing
    assert by_key[("h100-pcie-8", 2.0, 1.0)].cost_index == pytest.approx(2.0)


def test_faster_hardware_is_faster_and_system_is_searched() -> None:
    problem = _codesign(knobs={"peak_flops_scale": {"low": 0.5, "high": 4.0}})
    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask(
        {"system": optuna.distributions.CategoricalDistribution(["dgx-h100", "h100-pcie-8"])}
    )
    cand = problem.suggest(trial)
    assert "system" in trial.params and "hw_peak_flops_scale" in trial.params
    from dataclasses import replace

    slow = problem.evaluate(
        replace(
            cand,
            hardware=replace(
                cand.hardware, system=scale_system(cand.hardware.system, peak_flops=0.5)
            ),
        )
    )
    fast = problem.evaluate(
        replace(
            cand,
            hardware=replace(
                cand.hardware, system=scale_system(cand.hardware.system, peak_flops=4.0)
            ),
        )
    )
    assert fast["step_time_s"] < slow["step_time_s"]


def test_unknown_tier_knob_is_rejected() -> None:
    with pytest.raises(ExperimentError, match=r"link_bandwidth_scale\.ucie: no such tier"):
        _codesign(knobs={"link_bandwidth_scale": {"ucie": [1.0]}})


def test_flatten_report_names() -> None:
    flat = flatten_report(
        {
            "step_time_s": 1.0,
            "fits": True,
            "plan": {"tp": 8, "recompute": "full"},
            "time_breakdown_s": {"compute": 0.5, "tp_comm": 0.1},
            "memory_breakdown_bytes": {"weights": 3.0},
            "prefill_time_breakdown_s": {"compute": 0.2},
            "planner": {"candidates": 12, "top": [1, 2]},
            "workload": {"seq_len": 1},
        }
    )
    assert flat == {
        "step_time_s": 1.0,
        "fits": True,
        "plan_tp": 8,
        "plan_recompute": "full",
        "time_compute_s": 0.5,
        "time_tp_comm_s": 0.1,
        "memory_weights_bytes": 3.0,
        "prefill_time_compute_s": 0.2,
        "planner_candidates": 12,
    }


@pytest.mark.slow
def test_exhaustive_dense_front_is_exact(tmp_path: Path) -> None:
    exp = load_experiment(ROOT / "experiments" / "exhaustive-dense.yaml")
    result = start_run(exp, out=tmp_path / "ex")
    trials = result.trials
    assert len(trials) == ExperimentProblem(exp).space.size() == 21_344
    ok = trials[trials["feasible"]]
    values = ok[["loss", "step_time_s"]].to_numpy(dtype=float)
    assert np.array_equal(non_dominated(values), ok["on_front"].to_numpy())
    assert result.summary["front_size"] == int(ok["on_front"].sum())
    front = pd.read_csv(tmp_path / "ex" / "pareto.csv")
    assert len(front) == result.summary["front_size"]
    # every candidate ran the fixed tp=8 plan, or failed because tp=8 does not divide its heads
    assert set(trials.loc[trials["state"] == "COMPLETE", "plan_tp"]) == {8.0}
    bad = trials[trials["state"] == "FAIL"]
    assert (bad["num_heads"] % 8 != 0).all()


def test_exhaustive_refuses_a_large_real_space_with_its_size(tmp_path: Path) -> None:
    exp = experiment_from_dict(
        {
            "name": "big",
            "space": "moe_decoder",
            "hardware": {"system": "dgx-h100", "num_devices": 8},
            "workload": {
                "mode": "train",
                "seq_len": 2048,
                "global_batch_tokens": 1048576,
                "tokens": 1e10,
            },
            "objectives": {"loss": "min"},
            "references": [],
            "search": {"backend": "exhaustive", "max_candidates": 100_000},
        }
    )
    with pytest.raises(ValueError, match=r"1,105,920 candidates .* over the limit 100,000"):
        start_run(exp, out=tmp_path / "big")
