"""The training step model: breakdown arithmetic, vectorised = scalar, FLOP conventions and
the direction of every parallelism effect."""

from __future__ import annotations

import numpy as np
import pytest

from cost_models.options import TrainOptions
from cost_models.plan import ParallelPlan, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.train.step import TIME_KEYS, TrainCost, model_flops_per_token, train_cost
from hw_profiles.loader import load_system
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, matmul_flops_per_token

GPT = Architecture(
    name="gpt-test",
    num_layers=24,
    d_model=2048,
    num_heads=16,
    num_kv_heads=16,
    d_ff=8192,
    vocab_size=51200,
    ffn_activation="gelu",
    norm="layernorm",
)


def _cost(
    arch: Architecture,
    plan: ParallelPlan,
    *,
    system: str = "dgx-h100",
    seq: int = 4096,
    dtype: str = "bf16",
    options: TrainOptions | None = None,
) -> TrainCost:
    return train_cost(
        ArchBatch.from_architectures([arch]),
        PlanBatch.from_plans([plan]),
        system=load_system(system, plan.num_devices),
        workload=TrainWorkload(seq_len=seq, dtype=dtype),  # type: ignore[arg-type]
        options=options,
    )


PLANS = [
    ParallelPlan(
        tp=8,
        pp=4,
        dp=2,
        vpp=2,
        sequence_parallel=True,
        micro_batch=1,
        global_batch=64,
        zero=1,
        recompute="selective",
    ),
    ParallelPlan(tp=2, pp=2, dp=8, cp=2, micro_batch=2, global_batch=128, recompute="full"),
    ParallelPlan(tp=1, dp=64, micro_batch=1, global_batch=256, zero=3),
]


@pytest.mark.parametrize("plan", PLANS)
def test_time_breakdown_sums_to_step_time(plan: ParallelPlan) -> None:
    c = _cost(load_model("llama3-70b"), plan)
    total = sum(float(c.time_breakdown_s[k][0]) for k in TIME_KEYS)
    assert set(c.time_breakdown_s) == set(TIME_KEYS)
    assert total == pytest.approx(float(c.step_time_s[0]), rel=1e-12)
    assert all(float(v[0]) >= 0.0 for v in c.time_breakdown_s.values())
    tokens = plan.global_batch * 4096
    assert float(c.tokens_per_s[0]) == pytest.approx(tokens / float(c.step_time_s[0]))


def test_vectorised_equals_one_at_a_time() -> None:
    archs = [load_model("llama3-70b"), load_model("llama3-70b"), load_model("llama3-70b")]
    system = load_system("dgx-h100", 64)
    w = TrainWorkload(seq_len=4096)
    together = train_cost(
        ArchBatch.from_architectures(archs), PlanBatch.from_plans(PLANS), system=system, workload=w
    )
    for i, plan in enumerate(PLANS):
        alone = train_cost(
            ArchBatch.from_architectures([archs[i]]),
            PlanBatch.from_plans([plan]),
            system=system,
            workload=w,
        )
        assert float(together.step_time_s[i]) == pytest.approx(
            float(alone.step_time_s[0]), rel=1e-12
        )
        assert float(together.memory_per_device_bytes[i]) == pytest.approx(
            float(alone.memory_per_device_bytes[0])
        )


def test_model_flops_follow_palm_convention() -> None:
    # PaLM appendix B / NAR21 eq. 3: 6N + 12 * layers * d_model * seq for MHA (full attention)
    b = ArchBatch.from_architectures([GPT])
    seq = 2048
    expected = 3.0 * float(matmul_flops_per_token(b)[0]) + 12.0 * 24 * 2048 * seq
    assert float(model_flops_per_token(b, seq_len=seq)[0]) == pytest.approx(expected)


def test_full_recompute_adds_a_forward_pass() -> None:
    base = ParallelPlan(tp=1, dp=8, micro_batch=1, global_batch=64)
    none = _cost(GPT, base)
    full = _cost(GPT, ParallelPlan(tp=1, dp=8, micro_batch=1, global_batch=64, recompute="full"))
    ratio = float(full.hardware_flops_per_token[0]) / float(none.hardware_flops_per_token[0])
    assert 1.25 < ratio < 1.36  # 8N/6N = 1.33 on the matmuls; the LM head is not recomputed
    slower = float(full.step_time_s[0]) / float(none.step_time_s[0])
    assert 1.2 < slower < 1.4
    assert float(full.mfu[0]) < float(none.mfu[0])
    assert float(full.hfu[0]) > float(full.mfu[0]) * 1.1  # causal attention offsets part of it


def test_interleaving_divides_the_bubble() -> None:
    arch = load_model("llama3-70b")
    one = _cost(
        arch, ParallelPlan(tp=8, pp=4, dp=2, micro_batch=1, global_batch=32, recompute="full")
    )
    four = _cost(
        arch,
        ParallelPlan(tp=8, pp=4, dp=2, vpp=4, micro_batch=1, global_batch=32, recompute="full"),
    )
    ratio = float(one.time_breakdown_s["pp_bubble"][0]) / float(
        four.time_breakdown_s["pp_bubble"][0]
    )
    assert ratio == pytest.approx(4.0, rel=0.05)  # (p-1)/m vs (p-1)/(v m), NAR21 2.2.2
    ideal = sum(
        float(one.time_breakdown_s[k][0]) for k in ("compute", "tp_comm", "ep_comm", "cp_comm")
    )
    bubble_share = float(one.time_breakdown_s["pp_bubble"][0]) / ideal
    assert bubble_share == pytest.approx(3 / 16, rel=1e-9)  # (p-1)/m = 3/16 of the ideal time


def test_tensor_parallel_costs_communication_and_sequence_parallel_keeps_volume() -> None:
    arch = load_model("llama3-70b")
    tp8 = _cost(arch, ParallelPlan(tp=8, dp=1, micro_batch=1, global_batch=8, recompute="full"))
    sp8 = _cost(
        arch,
        ParallelPlan(
            tp=8, dp=1, sequence_parallel=True, micro_batch=1, global_batch=8, recompute="full"
        ),
    )
    assert float(tp8.time_breakdown_s["tp_comm"][0]) > 0.0
    # AG + RS move the same bytes as one all-reduce (Korthikanti et al. 2022, 4.2.2)
    assert float(sp8.time_breakdown_s["tp_comm"][0]) == pytest.approx(
        float(tp8.time_breakdown_s["tp_comm"][0]), rel=0.35
    )
    assert float(sp8.memory_breakdown_bytes["activations"][0]) < float(
        tp8.memory_breakdown_bytes["activations"][0]
    )


def test_expert_parallel_all_to_all_and_imbalance() -> None:
    arch = load_model("mixtral-8x7b")
    plan = ParallelPlan(tp=1, dp=8, ep=8, micro_batch=1, global_batch=64, zero=1, recompute="full")
    balanced = _cost(arch, plan, options=TrainOptions(moe_imbalance=1.0))
    skewed = _cost(arch, plan, options=TrainOptions(moe_imbalance=1.5))
    assert float(balanced.time_breakdown_s["ep_comm"][0]) > 0.0
    assert float(skewed.step_time_s[0]) > float(balanced.step_time_s[0])
    dense_plan = ParallelPlan(tp=1, dp=8, micro_batch=1, global_batch=64, zero=1, recompute="full")
    assert float(_cost(arch, dense_plan).time_breakdown_s["ep_comm"][0]) == 0.0


def test_fp8_is_faster_on_h100_for_a_large_model() -> None:
    arch = load_model("llama3-70b")
    plan = ParallelPlan(
        tp=8,
        pp=2,
        dp=4,
        sequence_parallel=True,
        micro_batch=1,
        global_batch=64,
        zero=1,
        recompute="selective",
    )
    bf16 = _cost(arch, plan)
    fp8 = _cost(arch, plan, dtype="fp8")
    assert float(fp8.step_time_s[0]) < 0.85 * float(bf16.step_time_s[0])
    assert float(fp8.memory_breakdown_bytes["weights"][0]) > float(
        bf16.memory_breakdown_bytes["weights"][0]
    )


def test_context_parallel_splits_the_sequence() -> None:
    arch = load_model("llama3-8b")
    no_cp = _cost(arch, ParallelPlan(tp=1, dp=8, micro_batch=1, global_batch=8), seq=32768)
    cp4 = _cost(arch, ParallelPlan(tp=1, dp=2, cp=4, micro_batch=1, global_batch=8), seq=32768)
    act = np.array(
        [
            float(no_cp.memory_breakdown_bytes["activations"][0]),
            float(cp4.memory_breakdown_bytes["activations"][0]),
        ]
    )
    assert act[1] == pytest.approx(act[0] / 4, rel=0.1)


def test_framework_options_move_the_right_parts() -> None:
    arch = load_model("llama3-70b")
    plan = ParallelPlan(
        tp=8,
        pp=2,
        dp=4,
        sequence_parallel=True,
        micro_batch=1,
        global_batch=64,
        zero=1,
        recompute="selective",
    )
    base = _cost(arch, plan)
    overlap = _cost(arch, plan, options=TrainOptions(tp_overlap=True))
    assert float(overlap.time_breakdown_s["tp_comm"][0]) < 0.5 * float(
        base.time_breakdown_s["tp_comm"][0]
    )
    bf16_grads = _cost(arch, plan, options=TrainOptions(grad_bytes=2.0))
    assert float(bf16_grads.memory_breakdown_bytes["gradients"][0]) == pytest.approx(
        0.5 * float(base.memory_breakdown_bytes["gradients"][0])
    )
    with pytest.raises(ValueError, match="grad_bytes"):
        TrainOptions(grad_bytes=3.0)


def test_node_limited_routing_cuts_cross_node_all_to_all() -> None:
    arch = load_model("deepseek-v3")
    plan = ParallelPlan(
        tp=1, pp=1, dp=64, ep=64, micro_batch=1, global_batch=64, zero=1, recompute="full"
    )
    free = _cost(arch, plan)
    limited = _cost(arch, plan, options=TrainOptions(moe_max_nodes=4))
    ratio = float(limited.time_breakdown_s["ep_comm"][0]) / float(
        free.time_breakdown_s["ep_comm"][0]
    )
    assert ratio == pytest.approx(4 / 8, rel=0.05)  # min(M, nodes) / top_k
