"""Prefill and decode keep the one memory headroom of training (``--memory-headroom``,
default ``nas.explain.MEMORY_HEADROOM`` = 0.9): a plan at 95% of device memory does not fit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cost_models.estimate import estimate
from cost_models.inference.planner import candidate_plans, evaluate_plans
from cost_models.plan import InferenceWorkload, ParallelPlan
from cost_models.stacks import resolve_serve
from hw_profiles.loader import load_system
from nas.cli import app
from nas.explain import MEMORY_HEADROOM
from search_spaces.catalogue import load_model

PLAN = ParallelPlan(tp=1, pp=1, dp=1, ep=1, global_batch=1)


def _workload(batch: int) -> InferenceWorkload:
    return InferenceWorkload(batch=batch, prompt_len=2048, gen_len=256)


def _ratio(batch: int) -> float:
    r = estimate(load_model("llama3-8b"), load_system("dgx-h100", 1), _workload(batch), plan=PLAN)
    return float(r["memory_per_device_bytes"]) / float(r["device_memory_bytes"])


def _batch_near(share: float) -> int:
    """The batch whose memory per device is nearest ``share`` of the device. Memory is
    affine in the batch once the default stack's chunked-prefill workspace (one 8,192-token
    chunk) is full, so two probes past that give it."""
    m1, m2 = _ratio(16), _ratio(32)
    return round(16 + 16 * (share - m1) / (m2 - m1))


def test_plan_at_95_percent_does_not_fit_under_0_9() -> None:
    batch = _batch_near(0.95)
    assert 0.92 < _ratio(batch) < 0.98
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    for mode in ("prefill", "decode"):
        full = estimate(arch, system, _workload(batch), plan=PLAN, mode=mode)
        kept = estimate(
            arch,
            system,
            _workload(batch),
            plan=PLAN,
            mode=mode,
            memory_headroom=MEMORY_HEADROOM,
        )
        assert full["fits"] and not kept["fits"]
        assert kept["memory_headroom"] == MEMORY_HEADROOM
        # the largest batch shrinks with the limit and stays under it
        assert kept["max_batch"] < batch <= full["max_batch"]
        assert _ratio(kept["max_batch"]) <= MEMORY_HEADROOM < _ratio(kept["max_batch"] + 1)


@pytest.mark.parametrize("share", [0.86, 0.92, 0.95])
def test_planner_picks_the_fastest_plan_within_the_headroom(share: float) -> None:
    """On 8 devices, at batches that put the plans around 90% of memory, the chosen plan is
    the fastest of those within 0.9 of device memory (checked against every candidate)."""
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 8)
    workload = _workload(8 * _batch_near(share))
    plans = candidate_plans(arch, system)
    r = evaluate_plans(arch, system, workload, plans, serve=resolve_serve()[1])
    limit = MEMORY_HEADROOM * system.device.capacity_bytes
    within = [i for i, m in enumerate(r.memory_per_device_bytes) if m <= limit]
    kept = estimate(arch, system, workload, mode="decode", memory_headroom=MEMORY_HEADROOM)
    assert kept["fits"] == bool(within)
    if within:
        best = plans[min(within, key=lambda i: float(r.e2e_s[i]))]
        assert kept["plan"] == {"tp": best.tp, "pp": best.pp, "dp": best.dp, "ep": best.ep}
        assert kept["memory_per_device_bytes"] <= limit


@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_cli_default_headroom_applies_to_inference(mode: str) -> None:
    batch = _batch_near(0.95)
    base = ["estimate", "llama3-8b", "--hardware", "dgx-h100", "--num-devices", "1"]
    base += ["--tp", "1", "--mode", mode, "--batch", str(batch), "--json"]
    base += ["--prompt-len", "2048", "--gen-len", "256"]
    default = CliRunner().invoke(app, base)
    full = CliRunner().invoke(app, [*base, "--memory-headroom", "1.0"])
    assert default.exit_code == 0 and full.exit_code == 0, default.output + full.output
    d, f = json.loads(default.output), json.loads(full.output)
    assert d["memory_headroom"] == MEMORY_HEADROOM and not d["fits"]
    assert f["memory_headroom"] == 1.0 and f["fits"]
