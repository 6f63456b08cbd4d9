"""Absurd numbers and malformed files are refused when the experiment is loaded (issue 17):
one line naming the field (or file) and the allowed range, never a traceback later on."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nas.experiment import ExperimentError, experiment_from_dict, load_experiment

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART: dict[str, Any] = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
INF = float("inf")


def _tokens(value: float) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["workload"].pop("budget_gpu_hours")
        d["workload"]["tokens"] = value

    return edit


def _serve(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["workload"] = {"mode": "serve", **fields}
        d["objectives"] = {"loss": "min"}

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


# (id, edit of the quickstart experiment, text the one-line error must contain)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("budget-inf", _set("workload.budget_gpu_hours", INF), "workload.budget_gpu_hours: "),
    ("budget-huge", _set("workload.budget_gpu_hours", 1e12), "workload.budget_gpu_hours: "),
    ("budget-nan", _set("workload.budget_gpu_hours", float("nan")), "finite number"),
    ("tokens-inf", _tokens(INF), "workload.tokens: Input should be a finite number"),
    ("tokens-tiny", _tokens(1e-300), "workload.tokens: Input should be greater than or equal"),
    ("tokens-huge", _tokens(1e30), "workload.tokens: Input should be less than or equal"),
    ("seq-len-huge", _set("workload.seq_len", 2**25), "workload.seq_len: "),
    ("knob-inf", _set("hardware.knobs", {"peak_flops_scale": [INF]}), "peak_flops_scale.0: "),
    ("knob-huge", _set("hardware.knobs", {"memory_size_scale": [1e9]}), "memory_size_scale.0"),
    (
        "devices-boolean",
        _set("hardware.num_devices", True),
        "num_devices: must be a number, got true",
    ),
    ("trials-boolean", _set("search.trials", True), "trials: must be a number, got true"),
    ("name-too-long", _set("name", "x" * 300), "name"),
    ("knob-tiny", _set("hardware.knobs", {"peak_flops_scale": [1e-300]}), "peak_flops_scale.0"),
    (
        "knob-range-inverted",
        _set("hardware.knobs", {"peak_flops_scale": {"low": 2, "high": 1}}),
        "hardware.knobs.peak_flops_scale: high (1.0) must be >= low (2.0)",
    ),
    ("system-empty", _set("hardware.system", []), "hardware.system: give a system name"),
    ("system-twice", _set("hardware.system", ["dgx-h100", "dgx-h100"]), "listed twice"),
    ("devices-huge", _set("hardware.num_devices", 2**40), "hardware.num_devices: "),
    ("exponent-nan", _set("hardware.cost_exponents", {"peak_flops": float("nan")}), "finite"),
    ("exponent-huge", _set("hardware.cost_exponents", {"peak_flops": 1e6}), "cost_exponents"),
    ("tp-zero", _set("plan", {"mode": "fixed", "fixed": {"tp": 0}}), "plan.fixed.tp: "),
    ("searched-zero", _set("plan", {"mode": "searched", "searched": {"pp": [0]}}), "searched.pp"),
    ("trials-huge", _set("search.trials", 10**12), "search.trials: "),
    ("gen-len-huge", _serve(gen_len=10**20), "workload.gen_len: "),
    ("batch-huge", _serve(batch=2**40), "workload.batch: "),
    ("accuracy-tokens-tiny", _set("accuracy.tokens", 1.0), "accuracy.tokens: "),
    ("tokens-per-param-tiny", _set("accuracy.tokens_per_param", 1e-300), "tokens_per_param"),
    ("constraint-bool-on-number", _set("constraints", {"loss": True}), "a numeric metric"),
    ("constraint-compare-on-bool", _set("constraints", {"fits": "<= 3"}), "a boolean metric"),
    ("constraint-bound-inf", _set("constraints", {"loss": "<= 1e999"}), "finite number"),
    (
        "system-number",
        _set("hardware.system", 5),
        "system: expected a valid string or a valid list",
    ),
    ("constraint-number", _set("constraints", {"loss": 5}), "constraints.loss: give an operator"),
    ("int-overflow", _set("space_overrides.num_layers", [8, 10**20]), "num_layers.1: integer"),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_absurd_values_are_refused_at_load(
    edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    data = copy.deepcopy(QUICKSTART)
    edit(data)
    with pytest.raises(ExperimentError) as info:
        experiment_from_dict(data, source="x.yaml")
    message = str(info.value)
    assert "\n" not in message and "(+" not in message, message
    assert message.startswith("x.yaml: ") and expected in message, message


def test_the_quickstart_itself_still_loads() -> None:
    assert experiment_from_dict(copy.deepcopy(QUICKSTART)).name == "quickstart"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: \xff\xfe\n", "not UTF-8 text (byte 6)"),
        (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested deeper than 64 levels"),
        (b"a: " + b"{b: " * 5_000 + b"1" + b"}" * 5_000 + b"\n", "nested deeper than 64 levels"),
        (b"a: 123456789012345678901234567890\n", "a: integer 1234"),
        (b"a: [1, 2\n", "not valid YAML"),
        (b"name: a\nspace: x\nname: b\n", "line 3: key 'name' is given twice"),
        (b"search: {trials: 2, trials: 3}\n", "line 1: key 'trials' is given twice"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(content)
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_a_space_override_past_its_physical_bound_is_named() -> None:
    from nas.problem import ExperimentProblem

    data = copy.deepcopy(QUICKSTART)
    data["space_overrides"]["num_layers"] = [8, 100_000]
    with pytest.raises(ValueError, match=r"^space_overrides\.num_layers: values must be <= 1000"):
        ExperimentProblem(experiment_from_dict(data))
