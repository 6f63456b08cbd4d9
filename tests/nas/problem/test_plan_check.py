"""A plan degree no plan can use (``plan.searched.tp: [1, 1000]`` on 8 devices) is refused
with one line naming the key and the allowed values, before the run directory is made (every
trial with it failed)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from nas.experiment import experiment_from_dict
from nas.problem import ExperimentProblem
from tests.cli.nas_cli_helpers import nas

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART: dict[str, Any] = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
MOE_SPACE = {"space": "moe_decoder", "space_overrides": {}}


def _with_plan(plan: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = {**copy.deepcopy(QUICKSTART), **changes}
    data["plan"] = plan
    return data


def _searched(**lists: list[int]) -> dict[str, Any]:
    return {"mode": "searched", "searched": lists}


REFUSED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("tp-past-devices", _searched(tp=[1, 1000]), {},
     "plan.searched.tp: 1000 does not divide num_devices 8 (dgx-h100); allowed: 1, 2, 4, 8"),
    ("tp-not-dividing", _searched(tp=[1, 3]), {}, "plan.searched.tp: 3 does not divide"),
    ("pp", _searched(pp=[1, 16]), {}, "plan.searched.pp: 16 does not divide num_devices 8"),
    ("dp", _searched(dp=[1, 16]), {}, "plan.searched.dp: 16 does not divide"),
    ("cp", _searched(cp=[32]), {}, "plan.searched.cp: 32 does not divide"),
    ("ep-devices", _searched(ep=[1, 64]), MOE_SPACE, "plan.searched.ep: 64 does not divide"),
    ("dp-replicate", _searched(dp_replicate=[1, 5]), {}, "plan.searched.dp_replicate: 5 does"),
    ("ep-dense", _searched(ep=[1, 2]), {},
     "plan.searched.ep: 2 needs MoE models and the space dense_decoder has none; allowed: 1"),
    ("micro-batch", _searched(micro_batch=[1, 7]), {},
     "plan.searched.micro_batch: 7 does not divide the global batch of 512 sequences"),
    ("fixed-tp", {"mode": "fixed", "fixed": {"tp": 16}}, {},
     "plan.fixed.tp: 16 does not divide num_devices 8 (dgx-h100); allowed: 1, 2, 4, 8"),
    ("fixed-one-system-of-two", {"mode": "fixed", "fixed": {"tp": 8}},
     {"hardware": {"system": ["dgx-h100", "gb200-nvl72"]}},
     "plan.fixed.tp: 8 does not divide num_devices of every system (dgx-h100: 8, gb200-nvl72: "
     "4); allowed: 1, 2, 4"),
    ("searched-no-system", _searched(tp=[5]),
     {"hardware": {"system": ["dgx-h100", "gb200-nvl72"]}},
     "plan.searched.tp: 5 divides num_devices of no system (dgx-h100: 8, gb200-nvl72: 4)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "changes", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_a_degree_no_plan_can_use_is_refused(
    plan: dict[str, Any], changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError) as info:
        ExperimentProblem(experiment_from_dict(_with_plan(plan, **changes)))
    assert str(info.value).startswith(expected) and "\n" not in str(info.value), info.value


ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("every-divisor", _searched(tp=[1, 2, 4, 8], pp=[1, 2], dp=[1, 8], micro_batch=[1, 512]), {}),
    ("ep-moe", _searched(ep=[1, 8]), MOE_SPACE),
    # 8 divides one system's devices: the other system's trials with it fail, not all trials
    ("searched-one-system-of-two", _searched(tp=[8]),
     {"hardware": {"system": ["dgx-h100", "gb200-nvl72"]}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "changes"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_usable_degrees_are_accepted(plan: dict[str, Any], changes: dict[str, Any]) -> None:
    ExperimentProblem(experiment_from_dict(_with_plan(plan, **changes)))


def test_nas_run_refuses_it_before_the_run_directory(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(_with_plan(_searched(tp=[1, 1000]))))
    result = nas("run", str(path), "--out", str(tmp_path / "run"))
    assert result.code == 2 and not (tmp_path / "run").exists()
    assert result.err.strip() == (
        "error: plan.searched.tp: 1000 does not divide num_devices 8 (dgx-h100); "
        "allowed: 1, 2, 4, 8"
    )
