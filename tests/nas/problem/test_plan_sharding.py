"""Experiments fix or search the ZeRO stage and hybrid-sharding replicas (``plan.fixed`` /
``plan.searched``: ``zero``, ``dp_replicate``) on both search paths, training only."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from nas.experiment import ExperimentError, experiment_from_dict
from nas.problem import Candidate, ExperimentProblem

BASE: dict[str, Any] = {
    "name": "sharding",
    "space": "dense_decoder",
    "space_overrides": {"num_layers": [16, 24], "d_model": [2048, 3072]},
    "hardware": {"system": "dgx-h100", "num_devices": 16},
    "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 2097152, "tokens": 1e11},
    "objectives": {"loss": "min", "step_time_s": "min"},
    "search": {"backend": "exhaustive"},
}


def _experiment(plan: dict[str, Any], **search: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["plan"] = plan
    data["search"].update(search)
    return data


def _grid(plan: dict[str, Any]) -> Any:
    problem = ExperimentProblem(experiment_from_dict(_experiment(plan)))
    return problem.evaluate_grid(max_candidates=10**6)


def test_grid_costs_every_candidate_under_the_fixed_stage_and_replicas() -> None:
    zero1 = _grid({"mode": "fixed", "fixed": {"tp": 1}})
    hsdp = _grid({"mode": "fixed", "fixed": {"tp": 1, "zero": 3, "dp_replicate": 2}})
    assert set(zero1["plan_zero"]) == {1.0} and set(zero1["plan_dp_replicate"]) == {1.0}
    assert set(hsdp["plan_zero"]) == {3.0} and set(hsdp["plan_dp_replicate"]) == {2.0}
    # same candidates in the same order; ZeRO-3 over 8 ranks shards the weights and gradients
    # that ZeRO-1 over 16 keeps whole: less memory, more communication per step
    keys = ["param_num_layers", "param_d_model"]
    assert (zero1[keys].to_numpy() == hsdp[keys].to_numpy()).all()
    m1, m3 = zero1["memory_weights_bytes"].to_numpy(), hsdp["memory_weights_bytes"].to_numpy()
    assert np.all(m3 < m1 / 2)  # an eighth of the weights plus the gathered layers
    assert np.all(hsdp["time_dp_comm_s"].to_numpy() > zero1["time_dp_comm_s"].to_numpy())


def test_grid_picks_the_fastest_fitting_stage_among_the_searched_ones() -> None:
    searched = _grid({"mode": "searched", "searched": {"tp": [1], "zero": [1, 3]}})
    one = _grid({"mode": "fixed", "fixed": {"tp": 1, "zero": 1}})
    three = _grid({"mode": "fixed", "fixed": {"tp": 1, "zero": 3}})
    fits1, fits3 = one["fits"].to_numpy(dtype=bool), three["fits"].to_numpy(dtype=bool)
    t1 = np.where(fits1, one["step_time_s"], np.inf)
    t3 = np.where(fits3, three["step_time_s"], np.inf)
    expected = np.where(t3 < t1, 3.0, 1.0)
    both_fit_or_one = np.isfinite(np.minimum(t1, t3))
    assert np.array_equal(
        searched["plan_zero"].to_numpy()[both_fit_or_one], expected[both_fit_or_one]
    )


def test_optuna_path_records_the_searched_stage_and_replicas() -> None:
    data = _experiment(
        {"mode": "searched", "searched": {"zero": [3], "dp_replicate": [2]}},
        backend="optuna",
        trials=1,
    )
    problem = ExperimentProblem(experiment_from_dict(data))
    arch = problem.space.to_architecture({"num_layers": 16, "d_model": 2048})
    point = problem.hardware_points()[0]
    record = problem.evaluate(
        Candidate(arch=arch, hardware=point, plan={"zero": 3, "dp_replicate": 2})
    )
    assert record["plan_zero"] == 3 and record["plan_dp_replicate"] == 2
    plain = problem.evaluate(Candidate(arch=arch, hardware=point, plan={"zero": 1}))
    assert record["memory_per_device_bytes"] < plain["memory_per_device_bytes"]


@pytest.mark.parametrize(
    ("plan", "workload", "needle"),
    [
        (
            {"mode": "fixed", "fixed": {"zero": 5}},
            None,
            "fixed.zero: 5 is not a ZeRO stage; allowed: 0, 1, 2, 3",
        ),
        (
            {"mode": "searched", "searched": {"dp_replicate": [0, 2]}},
            None,
            "searched.dp_replicate: must be >= 1",
        ),
        (
            {"mode": "fixed", "fixed": {"tp": 8, "zero": 3}},
            {"mode": "serve", "batch": 4},
            "plan.fixed.zero: only for training workloads",
        ),
    ],
)
def test_bad_stage_or_replicas_fail_in_one_line(
    plan: dict[str, Any], workload: dict[str, Any] | None, needle: str
) -> None:
    data = _experiment(plan)
    if workload is not None:
        data["workload"] = workload
    with pytest.raises(ExperimentError) as info:
        experiment_from_dict(data)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_replicas_must_divide_the_devices() -> None:
    data = _experiment({"mode": "fixed", "fixed": {"dp_replicate": 3}})
    with pytest.raises(
        ValueError, match=r"plan\.fixed\.dp_replicate: 3 does not divide num_devices 16"
    ):
        ExperimentProblem(experiment_from_dict(data))
