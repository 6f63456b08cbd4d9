"""Every number field of an experiment refuses a number written as text (``num_devices:
'8'`` ran on 8 devices) and a boolean, nested fields included; YAML numbers (``1e12``
too) and ints in float fields are still read as numbers, and text fields still take text."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from nas import experiment as exp_module
from nas.experiment import ExperimentError, experiment_from_dict, load_experiment

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART: dict[str, Any] = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
SERVE = {"mode": "serve", "batch": 8, "prompt_len": 512, "gen_len": 64}

# every number field: (key path in the file, a valid value); "[]" marks a list item
FIELDS: list[tuple[str, Any]] = [
    ("hardware.num_devices", 8),
    ("hardware.memory_headroom", 0.9),
    ("hardware.cost_exponents.peak_flops", 1),
    ("hardware.knobs.peak_flops_scale.[]", 1),
    ("hardware.knobs.memory_size_scale.low", 1),
    ("hardware.knobs.memory_size_scale.high", 2),
    ("workload.seq_len", 4096),
    ("workload.global_batch_tokens", 2_097_152),
    ("workload.budget_gpu_hours", 2000),
    ("serve:workload.batch", 8),
    ("serve:workload.prompt_len", 512),
    ("serve:workload.gen_len", 64),
    ("accuracy.tokens", 1e12),
    ("accuracy.tokens_per_param", 20),
    ("plan.fixed.tp", 8),
    ("plan.searched.tp.[]", 8),
    ("search.trials", 10),
    ("search.seed", 1),
    ("search.workers", 1),
    ("search.population_size", 4),
    ("search.max_candidates", 1000),
    ("search.replan_rows", 10),
    ("search.ray.concurrency", 1),
    ("search.ray.cpus_per_trial", 1),
    ("search.ray.gpus_per_trial", 0),
    ("search.ray.grace_steps", 5),
    ("search.ray.reduction_factor", 2),
    ("search.ray.max_failures", 1),
    ("workload.framework.moe_imbalance", 1.2),
]


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(QUICKSTART)
    if path.startswith("serve:"):
        data["workload"], data["objectives"] = dict(SERVE), {"loss": "min"}
        path = path.removeprefix("serve:")
    if path.startswith("plan."):
        data["plan"] = {"mode": path.split(".")[1]}
    if path.startswith("hardware.knobs.memory_size_scale."):  # a range needs both ends
        data["hardware"]["knobs"] = {"memory_size_scale": {"low": 1, "high": 2}}
    *parents, last = path.split(".")
    if last == "[]":  # a list item: the list of that one value
        *parents, last = parents
        value = [value]
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def _shown(path: str) -> str:
    return path.removeprefix("serve:").replace(".[]", ".0")


@pytest.mark.parametrize(("path", "value"), FIELDS, ids=[f[0] for f in FIELDS])
def test_a_number_field_takes_a_number(path: str, value: Any) -> None:
    experiment_from_dict(_with(path, value))


@pytest.mark.parametrize(("path", "value"), FIELDS, ids=[f[0] for f in FIELDS])
@pytest.mark.parametrize("form", ["text", "boolean"])
def test_a_number_field_refuses_text_and_booleans(path: str, value: Any, form: str) -> None:
    if form == "boolean" and path.startswith("workload.framework"):
        pytest.skip("a boolean fact is refused by the fact parser (cost_models.options)")
    given: Any = str(value) if form == "text" else True
    with pytest.raises(ExperimentError) as info:
        experiment_from_dict(_with(path, given), source="x.yaml")
    message = str(info.value)
    expected = f"got the text {given!r}" if form == "text" else "got true"
    assert message.startswith(f"x.yaml: {_shown(path)}: must be a number, "), message
    assert expected in message and "\n" not in message, message


def _number_fields() -> set[str]:
    """``Model.field`` for every field of the models of nas.experiment whose type holds an
    int or a float (the constraints' ``str | bool | float`` is text to be parsed)."""
    models = [
        v
        for v in vars(exp_module).values()
        if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == "nas.experiment"
    ]
    return {
        f"{m.__name__}.{name}"
        for m in models
        for name, info in m.model_fields.items()
        if re.search(r"\b(int|float)\b", str(info.annotation)) and name != "constraints"
    }


def test_the_table_covers_every_number_field() -> None:
    found = _number_fields()
    covered = {
        "KnobRange.low", "KnobRange.high", "Hardware.num_devices", "Hardware.memory_headroom",
        "Hardware.cost_exponents", "HardwareKnobs.peak_flops_scale",
        "HardwareKnobs.memory_bandwidth_scale", "HardwareKnobs.memory_size_scale",
        "HardwareKnobs.link_bandwidth_scale", "TrainWorkload.seq_len",
        "TrainWorkload.global_batch_tokens", "TrainWorkload.tokens",
        "TrainWorkload.budget_gpu_hours", "ServeWorkload.batch", "ServeWorkload.prompt_len",
        "ServeWorkload.gen_len", "Accuracy.tokens", "Accuracy.tokens_per_param",
        "PlanSpec.fixed", "PlanSpec.searched", "RaySettings.concurrency",
        "RaySettings.cpus_per_trial", "RaySettings.gpus_per_trial", "RaySettings.grace_steps",
        "RaySettings.reduction_factor", "RaySettings.max_failures", "SearchSettings.trials",
        "SearchSettings.seed", "SearchSettings.workers", "SearchSettings.population_size",
        "SearchSettings.max_candidates", "SearchSettings.replan_rows",
    }  # fmt: skip
    assert found == covered  # a new number field: add it to FIELDS and here


def test_yaml_numbers_in_every_form_are_numbers(tmp_path: Path) -> None:
    """``1e12`` and ``1.0e12`` are YAML 1.2 numbers (PyYAML alone read them as text); an int
    in a float field and a whole float in an int field are read; text fields keep text."""
    text = (ROOT / "experiments" / "quickstart.yaml").read_text()
    text = text.replace("budget_gpu_hours: 2000", "tokens: 1e12")
    text = text.replace("num_devices: 8", "num_devices: 8.0, memory_headroom: 1")
    text = text.replace("sampler: nsga2", "sampler: tpe, workers: 1.0e0")
    path = tmp_path / "e.yaml"
    path.write_text(text)
    exp = load_experiment(path)
    assert exp.workload.tokens == 1e12 and exp.hardware.num_devices == 8  # type: ignore[union-attr]
    assert exp.hardware.memory_headroom == 1.0 and exp.search.sampler == "tpe"
    assert exp.search.workers == 1 and exp.space == "dense_decoder"


def test_a_quoted_number_in_a_file_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "experiments" / "quickstart.yaml").read_text()
    path = tmp_path / "e.yaml"
    path.write_text(text.replace("num_devices: 8", "num_devices: '8'"))
    with pytest.raises(ExperimentError, match=r"hardware\.num_devices: must be a number, got"):
        load_experiment(path)
