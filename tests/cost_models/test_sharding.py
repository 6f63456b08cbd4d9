"""Expert placement when expert parallelism does not divide the routed experts (redundant
experts, as large-EP serving deploys them; DeepSeek-V3, arXiv 2412.19437, section 3.4)."""

from __future__ import annotations

import numpy as np
import pytest

from cost_models import estimate
from cost_models.plan import InferenceWorkload, PlanError, TrainWorkload
from cost_models.plans import enumerate_plans
from cost_models.sharding import expert_share, experts_per_rank
from hw_profiles.loader import load_system
from search_spaces.catalogue import load_model


def test_experts_per_rank_rounds_up_with_redundant_copies() -> None:
    assert experts_per_rank(256, 32) == 8
    assert experts_per_rank(256, 320) == 1  # 64 ranks hold redundant copies
    assert experts_per_rank(256, 96) == 3  # 288 slots for 256 experts
    assert expert_share(256, 96) == pytest.approx(3 / 256)


def _expert_weight_bytes(devices: int, ep: int) -> float:
    arch = load_model("deepseek-v3")
    system = load_system("cloudmatrix-384", devices)
    r = estimate(
        arch,
        system,
        InferenceWorkload(batch=devices, prompt_len=1024, gen_len=64, weight_dtype="fp8"),
        fixed={"tp": 1, "pp": 1, "ep": ep},
        mode="decode",
    )
    assert r["plan"]["ep"] == ep
    return float(r["memory_breakdown_bytes"]["weights"])


def test_serving_accepts_ep_that_does_not_divide_the_experts() -> None:
    # one routed expert per die either way: the 64 extra dies hold copies, not fewer weights
    assert _expert_weight_bytes(320, 320) == pytest.approx(_expert_weight_bytes(256, 256))


def test_training_accepts_a_fixed_non_dividing_ep_and_searches_dividing_ones() -> None:
    arch = load_model("deepseek-v3")
    system = load_system("dgx-h100", 192)
    workload = TrainWorkload(seq_len=4096)
    searched = enumerate_plans(arch, system, workload)
    assert np.all(np.mod(256, searched.ep) == 0)
    fixed = enumerate_plans(arch, system, workload, fixed={"ep": 96, "tp": 1, "pp": 1})
    assert len(fixed) > 0 and np.all(fixed.ep == 96)


def test_dense_model_refuses_expert_parallelism() -> None:
    arch = load_model("llama3-8b")
    with pytest.raises(PlanError, match="ep: must be 1 for a dense model"):
        enumerate_plans(arch, load_system("dgx-h100", 8), TrainWorkload(seq_len=4096),
                        fixed={"ep": 2})  # fmt: skip
