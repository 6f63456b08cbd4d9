"""``nas estimate`` (train) against the JSON contract in docs/design.md, and its bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nas.cli import app

RUNNER = CliRunner()
TRAIN_KEYS = {
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "mfu",
    "model_flops_per_token",
    "memory_per_device_bytes",
    "fits",
    "plan",
    "time_breakdown_s",
    "memory_breakdown_bytes",
}


def _json(*args: str) -> dict[str, object]:
    result = RUNNER.invoke(app, ["estimate", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_train_json_contract() -> None:
    data = _json("llama3-8b", "--hardware", "dgx-h100", "--num-devices", "16", "--seq-len", "8192")
    assert set(data) >= TRAIN_KEYS
    tb = data["time_breakdown_s"]
    assert isinstance(tb, dict)
    assert set(tb) == {
        "compute",
        "tp_comm",
        "pp_bubble",
        "pp_comm",
        "dp_comm",
        "ep_comm",
        "cp_comm",
        "other",
    }
    assert sum(tb.values()) == pytest.approx(data["step_time_s"], rel=1e-9)
    mb = data["memory_breakdown_bytes"]
    assert isinstance(mb, dict)
    assert set(mb) == {"weights", "gradients", "optimizer", "activations", "other"}
    assert sum(mb.values()) == pytest.approx(data["memory_per_device_bytes"], rel=1e-9)
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert plan["tp"] * plan["pp"] * plan["dp"] * plan["cp"] == 16
    assert data["fits"] is True
    assert 0.1 < float(data["mfu"]) < 0.8  # type: ignore[arg-type]


def test_given_degrees_are_used_and_the_rest_planned() -> None:
    data = _json(
        "llama3-70b",
        "--hardware",
        "dgx-h100",
        "--num-devices",
        "64",
        "--tp",
        "8",
        "--pp",
        "2",
        "--recompute",
        "full",
        "--sequence-parallel",
    )
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert (plan["tp"], plan["pp"], plan["recompute"], plan["sequence_parallel"]) == (
        8,
        2,
        "full",
        True,
    )
    assert plan["dp"] * plan["cp"] == 4


def test_a_plan_that_does_not_fit_is_reported_not_an_error() -> None:
    data = _json(
        "llama3-70b",
        "--hardware",
        "dgx-h100",
        "--tp",
        "1",
        "--pp",
        "1",
        "--dp",
        "8",
        "--cp",
        "1",
        "--zero",
        "0",
        "--recompute",
        "none",
        "--micro-batch",
        "1",
        "--global-batch",
        "64",
    )
    assert data["fits"] is False
    mb = data["memory_breakdown_bytes"]
    assert isinstance(mb, dict) and mb["optimizer"] > 80e9


def test_readable_tables_by_default() -> None:
    result = RUNNER.invoke(app, ["estimate", "llama3-8b", "--hardware", "dgx-h100"])
    assert result.exit_code == 0, result.output
    for text in (
        "time breakdown",
        "memory breakdown",
        "tokens_per_s_per_device",
        "pp_bubble",
        "activations",
    ):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "llama3-8b",
                "--hardware",
                "dgx-h100",
                "--tp",
                "2",
                "--pp",
                "2",
                "--dp",
                "3",
                "--cp",
                "1",
                "--num-devices",
                "8",
            ],
            "must equal the device count 8",
        ),
        (["llama3-8b", "--hardware", "dgx-h100", "--tp", "3"], "tp: must divide num_heads"),
        (
            ["mixtral-8x7b", "--hardware", "dgx-h100", "--ep", "3"],
            "ep dividing dp*cp*tp",
        ),
        (["no-such-model", "--hardware", "dgx-h100"], "unknown name"),
        (["llama3-8b", "--hardware", "no-such-system"], "unknown system"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nas", "estimate", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
