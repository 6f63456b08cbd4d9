"""Experiment files: validation, one-line errors with dotted paths, shipped experiments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from nas.cli import app
from nas.experiment import ExperimentError, experiment_from_dict, load_experiment, parse_constraint

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))
BASE: dict[str, Any] = {
    "name": "x",
    "space": "dense_decoder",
    "hardware": {"system": "dgx-h100"},
    "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 4194304, "tokens": 1e12},
    "objectives": {"loss": "min"},
}


def _error(**changes: Any) -> str:
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        *head, last = dotted.split("__")
        for key in head:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    with pytest.raises(ExperimentError) as info:
        experiment_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_errors_name_the_dotted_path_and_allowed_values() -> None:
    assert _error(bogus=1).startswith("bogus: unknown key; allowed: accuracy, constraints")
    assert _error(hardware__bogus=1).startswith(
        "hardware.bogus: unknown key; allowed: cost_exponents"
    )
    assert _error(workload__bogus=1).startswith(
        "workload.bogus: unknown key; allowed: budget_gpu_hours"
    )
    assert _error(workload__mode="eval") == "workload.mode: must be train or serve"
    assert "exactly one of tokens or budget_gpu_hours" in _error(workload__tokens=None)
    assert _error(search__sampler="cmaes").startswith(
        "search.sampler: Input should be 'nsga2', 'tpe'"
    )
    assert _error(objectives={"loss": "minimise"}).startswith(
        "objectives.loss: Input should be 'min' or 'max'"
    )
    assert _error(hardware__num_devices=0).startswith("hardware.num_devices:")
    assert _error(constraints={"loss": "< = 3"}).startswith(
        "constraints.loss: expected '<= NUMBER'"
    )
    assert _error(plan={"mode": "searched", "searched": {"xx": [1]}}).startswith(
        "plan.searched.xx:"
    )


def test_impossible_combinations_are_rejected() -> None:
    msg = _error(
        search={"backend": "exhaustive"},
        hardware={"system": "dgx-h100", "knobs": {"peak_flops_scale": {"low": 1, "high": 2}}},
    )
    assert msg.startswith("hardware.knobs.peak_flops_scale: the exhaustive backend needs a list")
    assert "mode fixed needs degrees" in _error(plan={"mode": "fixed"})
    assert "needs a vectorised evaluator" in _error(
        search={"backend": "exhaustive"}, accuracy={"evaluator": "proxy_train"}
    )


def test_constraints_parse_bounds() -> None:
    c = parse_constraint("memory_per_device_bytes", "<= 0.9 * device")
    assert (c.op, c.bound, c.relative_to) == ("<=", 0.9, "device")
    assert parse_constraint("tpot_s", "< 5e-2").bound == pytest.approx(0.05)
    assert parse_constraint("fits", True).op == "=="
    with pytest.raises(ExperimentError, match="relative bound must be"):
        parse_constraint("x", "<= 2 * host")


def test_plan_shorthand_and_defaults() -> None:
    exp = experiment_from_dict({**BASE, "plan": "auto"})
    assert exp.plan.mode == "auto"
    assert exp.search.backend == "optuna" and exp.search.sampler == "nsga2"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_shipped_experiments_validate_and_build(path: Path) -> None:
    from nas.problem import ExperimentProblem

    exp = load_experiment(path)
    assert exp.name == path.stem
    problem = ExperimentProblem(exp)
    assert problem.objectives and problem.systems


def test_cli_reports_bad_experiment_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nspace: dense_decoder\nhardware: {system: dgx-h100, gpus: 8}\n")
    result = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ExperimentError)
    assert "hardware.gpus: unknown key" in str(result.exception)


def test_workloads_build_the_cost_model_workload() -> None:
    from cost_models.plan import InferenceWorkload, TrainWorkload

    serve = experiment_from_dict({**BASE, "workload": {"mode": "serve"}}).workload
    assert serve.to_cost_workload() == InferenceWorkload()  # one set of serving defaults
    custom = {"mode": "serve", "batch": 8, "prompt_len": 512, "gen_len": 64, "kv_dtype": "fp8"}
    serve = experiment_from_dict({**BASE, "workload": custom}).workload
    assert serve.to_cost_workload() == InferenceWorkload(
        batch=8, prompt_len=512, gen_len=64, kv_dtype="fp8"
    )
    assert serve.context_len == 576
    train = experiment_from_dict(BASE).workload
    assert train.to_cost_workload() == TrainWorkload(seq_len=train.seq_len, dtype=train.dtype)
    assert train.global_batch * train.seq_len == train.global_batch_tokens


@pytest.mark.parametrize(
    ("accuracy", "expected"),
    [
        ({"evaluator": "nope"}, "accuracy.evaluator: unknown name 'nope'; allowed: decoder_params"),
        ({"settings": {"law": "nope"}}, "accuracy.settings.law: must be one of auto, hoffmann2022"),
        ({"settings": {"lawz": 1}}, "accuracy.settings.lawz: unknown setting; allowed: law,"),
        (
            {"evaluator": "proxy_train", "settings": {"width_factor": 7}},
            "accuracy.settings.width_factor: must be a finite number in (0, 1], got 7",
        ),
        ({"evaluator": "fitted_law"}, "accuracy.settings.path: required setting is missing"),
        (
            {"evaluator": "decoder_params", "settings": {"count": "x"}},
            "accuracy.settings.count: must be one of non_embedding, active_non_embedding",
        ),
    ],
)
def test_evaluator_errors_name_the_key_of_the_file(
    accuracy: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    """The evaluator's own names (scaling_law.law, proxy_train.width_factor) are not keys of
    the file: the message names accuracy.settings.<key> or accuracy.evaluator, and nas run
    exits 2 with that one line before any run directory is made."""
    from nas.problem import ExperimentProblem

    data = {**copy.deepcopy(BASE), "accuracy": accuracy}
    with pytest.raises(ValueError) as info:
        ExperimentProblem(experiment_from_dict(data))
    assert str(info.value).startswith(expected), info.value
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and not (tmp_path / "run").exists()
