"""Training-software facts (``workload.framework`` in experiments, ``nas estimate
--framework``) reach the cost model, and bad keys or values are one-line errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from cost_models.options import train_options
from nas.experiment import ExperimentError, experiment_from_dict
from nas.problem import Candidate, ExperimentProblem
from nas.problem.hardware import hardware_grid
from search_spaces.catalogue import load_model

if TYPE_CHECKING:  # the fixture lives in tests/conftest.py
    from conftest import NasRun


def _experiment(workload: dict[str, Any], *, devices: int, objective: str) -> ExperimentProblem:
    exp = experiment_from_dict(
        {
            "name": "fw",
            "space": "dense_decoder",
            "hardware": {"system": "dgx-h100", "num_devices": devices},
            "workload": workload,
            "objectives": {objective: "min"},
        }
    )
    return ExperimentProblem(exp)


def _problem(framework: dict[str, Any], stack: str | None = None) -> ExperimentProblem:
    workload = {"mode": "train", "seq_len": 4096, "global_batch_tokens": 1048576, "tokens": 1e11}
    if stack is not None:
        workload["stack"] = stack
    return _experiment({**workload, "framework": framework}, devices=8, objective="step_time_s")


def _step_time(framework: dict[str, Any], stack: str | None = None) -> float:
    problem = _problem(framework, stack)
    point = hardware_grid(problem.experiment.hardware, problem.systems)[0]
    record = problem.evaluate(Candidate(arch=load_model("llama3-8b"), hardware=point))
    return float(record["step_time_s"])


def test_experiment_framework_changes_the_trial_cost() -> None:
    base = _step_time({})
    assert _step_time({"elementwise": "eager"}) > base
    assert _step_time({"attention_kernel": "flash2"}) > base
    assert _step_time({"attention_kernel": "flash"}) == base


@pytest.mark.parametrize(
    ("framework", "message"),
    [
        ({"kernel": "flash"}, "workload.framework.kernel: unknown key; allowed: attention_kernel"),
        ({"elementwise": "jit"}, "workload.framework.elementwise: must be one of fused, eager"),
        ({"grad_bytes": 3}, "workload.framework.grad_bytes: must be one of 2, 4"),
        ({"moe_imbalance": 0.5}, "workload.framework.moe_imbalance: must lie in [1, 4]"),
    ],
)
def test_experiment_framework_errors_name_the_key(framework: dict[str, Any], message: str) -> None:
    with pytest.raises(ExperimentError) as err:
        _problem(framework)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_estimate_cli_framework_flag(nas_cli: NasRun) -> None:
    args = ["estimate", "llama3-8b", "--hardware", "dgx-h100", "--tp", "1", "--pp", "1"]
    args += ["--dp", "8", "--micro-batch", "1", "--global-batch", "8", "--json"]
    code, out, _ = nas_cli(args)
    assert code == 0
    code_e, out_e, _ = nas_cli([*args, "--framework", "elementwise=eager"])
    assert code_e == 0
    fused, eager = json.loads(out), json.loads(out_e)
    assert eager["step_time_s"] > fused["step_time_s"]
    assert eager["model_flops_per_token"] == fused["model_flops_per_token"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--framework", "elementwise"], "--framework: expected KEY=VALUE"),
        (["--framework", "speed=fast"], "--framework.speed: unknown key"),
        (["--framework", "tp_overlap=maybe"], "--framework.tp_overlap: must be one of false, true"),
        (
            ["--mode", "decode", "--framework", "elementwise=eager"],
            "--framework.elementwise: unknown key; allowed: step_overhead_s",
        ),
    ],
)
def test_estimate_cli_framework_errors(nas_cli: NasRun, extra: list[str], message: str) -> None:
    code, out, err = nas_cli(["estimate", "llama3-8b", "--hardware", "dgx-h100", *extra])
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_text_values_parse_to_the_option_types() -> None:
    opts = train_options({"tp_overlap": "true", "grad_bytes": "2", "moe_max_nodes": "4"})
    assert opts.tp_overlap is True
    assert opts.grad_bytes == 2.0
    assert opts.moe_max_nodes == 4


def _serve_tpot(stack: str | None) -> float:
    workload: dict[str, Any] = {"mode": "serve", "batch": 1, "prompt_len": 512, "gen_len": 64}
    if stack is not None:
        workload["stack"] = stack
    problem = _experiment(workload, devices=1, objective="decode_tpot_s")
    point = hardware_grid(problem.experiment.hardware, problem.systems)[0]
    record = problem.evaluate(Candidate(arch=load_model("llama3-8b"), hardware=point))
    return float(record["decode_tpot_s"])


def test_workload_stack_reaches_the_trial_cost() -> None:
    from cost_models.stacks import resolve_serve

    # training: Megatron-LM 2021-22 (unfused attention, no TP overlap) is slower than the
    # default Megatron-Core stack on the same shape and plan; an explicit default is the default
    assert _step_time({}) == _step_time({}, "megatron-core")
    assert _step_time({}, "megatron-lm") > _step_time({})
    # serving: the engine's per-iteration overhead is the difference between two stacks
    vllm, sglang = _serve_tpot(None), _serve_tpot("sglang")
    gap = resolve_serve("vllm")[1].step_overhead_s - resolve_serve("sglang")[1].step_overhead_s
    assert vllm - sglang == pytest.approx(gap, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        (
            "megatron",
            "workload.stack: unknown stack 'megatron'; allowed: deepspeed, deepspeed-2021, hai-llm",
        ),
        ("vllm", "workload.stack: 'vllm' is a serve stack; for train use one of: deepspeed"),
    ],
)
def test_experiment_stack_errors_list_the_names(stack: str, message: str) -> None:
    with pytest.raises(ExperimentError) as err:
        _problem({}, stack)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_estimate_cli_stack_flag(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["estimate", "--help"])
    assert code == 0 and "megatron-core" in out and "vllm" in out
    args = ["estimate", "llama3-8b", "--hardware", "dgx-h100", "--num-devices", "8", "--json"]
    code, out, _ = nas_cli([*args, "--stack", "torchtitan"])
    assert code == 0 and json.loads(out)["stack"] == "torchtitan"
    code, out, err = nas_cli([*args, "--stack", "nemo"])
    assert code == 2
    line = (out + err).strip()
    assert line.startswith("error: --stack: unknown stack 'nemo'; allowed:") and "\n" not in line
    code, out, err = nas_cli([*args, "--stack", "torchtitan", "--framework", "step_overhead_s=1"])
    assert code == 2 and "step_overhead_s" in out + err
