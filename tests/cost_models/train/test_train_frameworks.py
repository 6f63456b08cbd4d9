"""Framework facts that change the training cost: PyTorch eager element-wise kernels and
torchtitan's op-level selective checkpointing (TrainOptions.elementwise and
.selective_recompute), and the power-limited Grand Teton H100 profile they were checked on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cost_models.options import TrainOptions
from cost_models.plan import ParallelPlan, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.train.calibration import load_calibration
from cost_models.train.memory_ops import fp8_cast_bytes
from cost_models.train.ops import StageShape
from cost_models.train.step import TrainCost, hardware_flops_per_token, train_cost
from hw_profiles.loader import load_device, load_system
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch

LLAMA8B = load_model("llama3-8b")
PLAN = ParallelPlan(dp=8, micro_batch=2, global_batch=16, zero=3, recompute="selective")
WORKLOAD = TrainWorkload(seq_len=8192, dtype="bf16")


def _cost(
    options: TrainOptions, plan: ParallelPlan = PLAN, workload: TrainWorkload = WORKLOAD
) -> TrainCost:
    return train_cost(
        ArchBatch.from_architectures([LLAMA8B]),
        PlanBatch.from_plans([plan]),
        system=load_system("grand-teton-h100", 8),
        workload=workload,
        options=options,
        keep_ops=True,
    )


def _op(cost: TrainCost, name: str) -> float:
    return float(next(op for op in cost.ops if op.name == name).bytes_moved[0])


def test_eager_norms_move_nine_times_the_bytes_of_a_fused_kernel() -> None:
    fused, eager = _cost(TrainOptions()), _cost(TrainOptions(elementwise="eager"))
    assert _op(eager, "norms") == pytest.approx(9.0 * _op(fused, "norms"))  # 36 vs 4 B/elem
    assert _op(eager, "rope") == pytest.approx(5.0 * _op(fused, "rope"))  # 20 vs 4 B/elem
    assert _op(eager, "activation") == pytest.approx(10.0 / 6.0 * _op(fused, "activation"))
    assert _op(eager, "residual") == pytest.approx(_op(fused, "residual"))
    assert "layout_copies" in {op.name for op in eager.ops}
    assert "layout_copies" not in {op.name for op in fused.ops}
    assert eager.time_breakdown_s["compute"][0] > fused.time_breakdown_s["compute"][0]
    # element-wise kernels change time, not FLOPs
    assert eager.hardware_flops_per_token[0] == fused.hardware_flops_per_token[0]


def test_alternate_mm_recomputes_k_o_and_up() -> None:
    """Op-level SAC re-runs the 2nd, 4th and 6th matmul of a Llama block: wk, wo and w3."""
    arch = ArchBatch.from_architectures([LLAMA8B])
    plan = PlanBatch.from_plans([PLAN])
    attention = TrainOptions()
    alternate = TrainOptions(selective_recompute="alternate_mm")
    d, kv, ff, layers = 4096, 8 * 128, 14336, 32
    recomputed = 2.0 * layers * (d * kv + d * d + d * ff)  # forward FLOPs per token
    hw_att = hardware_flops_per_token(arch, plan, seq_len=8192, options=attention)
    hw_alt = hardware_flops_per_token(arch, plan, seq_len=8192, options=alternate)
    # attention's selective recompute re-runs the causal attention forward instead
    causal_fwd = 2.0 * layers * 8192 * d  # QK^T + AV over s/2 keys on average
    assert float(hw_alt[0] - hw_att[0]) == pytest.approx(recomputed - causal_fwd, rel=1e-9)
    slower = _cost(alternate).time_breakdown_s["compute"][0]
    assert slower > _cost(attention).time_breakdown_s["compute"][0]
    # no effect without selective recompute
    none = replace(PLAN, recompute="none")
    assert _cost(alternate, none).step_time_s[0] == _cost(attention, none).step_time_s[0]


def test_options_reject_unknown_values() -> None:
    with pytest.raises(ValueError, match="elementwise"):
        TrainOptions(elementwise="jit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="selective_recompute"):
        TrainOptions(selective_recompute="some")  # type: ignore[arg-type]


def test_grand_teton_h100_profile_is_bounded_by_its_sources() -> None:
    dev = load_device("h100-sxm-96gb-500w")
    sxm = load_device("h100-sxm")
    # torchtitan: the peak lies between H100 NVL (835.5 dense bf16) and SXM (989.4)
    assert 835.5e12 < dev.peak("bf16") < sxm.peak("bf16")
    assert dev.memory_bandwidth_bytes_per_s == pytest.approx(2.4e12)
    assert dev.memory_bytes == pytest.approx(96e9)
    assert "torchtitan" in dev.sources["peak_tflops"]
    # same die: it shares the H100 SXM sustained fraction instead of fitting its own
    cal = load_calibration()
    assert cal.fraction(dev.name) == cal.fraction(sxm.name)


def test_flashattention2_is_slower_on_hopper_only() -> None:
    """FA2 lacks Hopper's wgmma/TMA paths: on H100 its attention runs at the measured
    FA2/cuDNN ratio of the profile's efficiency, on A100 (where FA2 is the best kernel) the
    same as ``flash``."""
    flash2 = TrainOptions(attention_kernel="flash2")

    def attention_s(system: str, options: TrainOptions) -> float:
        cost = train_cost(
            ArchBatch.from_architectures([LLAMA8B]),
            PlanBatch.from_plans([PLAN]),
            system=load_system(system, 8),
            workload=WORKLOAD,
            options=options,
            keep_ops=True,
        )
        return float(next(op.fwd_s for op in cost.ops if op.name == "attention")[0])

    h100 = load_device("h100-sxm")
    ratio = attention_s("dgx-h100", flash2) / attention_s("dgx-h100", TrainOptions())
    assert h100.attention_efficiency_fa2 is not None
    assert ratio == pytest.approx(h100.attention_efficiency / h100.attention_efficiency_fa2)
    assert ratio == pytest.approx(631.338 / 329.483, rel=0.01)  # pytorch/pytorch issue 142132
    assert attention_s("dgx-a100", flash2) == attention_s("dgx-a100", TrainOptions())


def _fp8_bytes(casts: str, plan: ParallelPlan, model: str = "llama3-8b") -> tuple[float, float]:
    arch = ArchBatch.from_architectures([load_model(model)])
    batch = PlanBatch.from_plans([plan])
    fwd, bwd = fp8_cast_bytes(arch, batch, StageShape.of(arch, batch, seq_len=8192), casts=casts)
    return float(fwd[0]), float(bwd[0])


def test_transformer_engine_casts_only_inputs_without_a_fused_producer() -> None:
    # Llama 3 8B, TP 1: Transformer Engine casts the attention output (4096 per token, read 2
    # + write 2 x 1 byte) and, once per step, every layer weight; backward casts the output
    # gradients of q, k/v, o and down (4096 + 2048 + 4096 + 4096), not of gate/up
    m = PLAN.global_batch // (PLAN.dp * PLAN.micro_batch)
    tokens, layers = PLAN.micro_batch * 8192, LLAMA8B.num_layers
    layer_weights = (4096 * (4096 + 1024 + 1024) + 4096 * 4096 + 3 * 4096 * 14336) * layers
    fwd, bwd = _fp8_bytes("fused", PLAN)
    assert fwd == pytest.approx(4.0 * (tokens * layers * 4096 + layer_weights / m))
    assert bwd == pytest.approx(4.0 * tokens * layers * (4096 + 2048 + 4096 + 4096))
    # per GEMM (torchao-style): every input and weight cast each micro-batch, 3 bytes/element
    per_fwd, per_bwd = _fp8_bytes("per_gemm", PLAN)
    inputs = tokens * layers * (4096 * 2 + 4096 + 4096 + 14336)  # q, kv, o, gate/up, down
    assert per_fwd == pytest.approx(3.0 * (inputs + layer_weights)) and per_bwd == 2 * per_fwd
    # weights are cast once per step: more micro-batches, fewer weight bytes per micro-batch
    more = replace(PLAN, global_batch=4 * PLAN.global_batch)
    assert _fp8_bytes("fused", more)[0] < fwd


def test_fp8_casts_fact_changes_only_fp8_runs() -> None:
    fp8 = TrainWorkload(seq_len=8192, dtype="fp8")
    times = {}
    for casts in ("per_gemm", "fused"):
        options = TrainOptions(fp8_casts=casts)  # type: ignore[arg-type]
        bf16 = _cost(options).step_time_s[0]
        times[casts] = (bf16, _cost(options, workload=fp8).step_time_s[0])
    assert times["per_gemm"][0] == times["fused"][0]
    assert times["fused"][1] < times["per_gemm"][1]
    with pytest.raises(ValueError, match="fp8_casts: must be one of per_gemm, fused"):
        TrainOptions(fp8_casts="none")  # type: ignore[arg-type]


def test_expert_casts_see_the_ranks_token_shard_and_expert_tp() -> None:
    # Mixtral 8x7B, TP 2 with EP 4 (expert TP 1): the TP ranks dispatch disjoint halves of the
    # tokens, so each rank casts half the routed tokens' expert inputs (top 2 of 4096 and of
    # 14336 per token) and output gradients (2 x 14336 gate/up and 4096 down), at full
    # expert width; attention is split by TP 2
    plan = ParallelPlan(tp=2, dp=4, ep=4, micro_batch=1, global_batch=8, zero=1)
    tokens, layers, top_k = 8192, 32, 2
    routed = tokens / 2 * top_k
    per_layer_w = (4096 * 4096 * 2 + 4096 * 2048) / 2 + 2 * 3 * 4096 * 14336  # 2 experts/rank
    fwd, bwd = _fp8_bytes("fused", plan, "mixtral-8x7b")
    acts = tokens * 4096 / 2 + routed * (4096 + 14336)
    assert fwd == pytest.approx(4.0 * layers * (acts + per_layer_w / 2))  # 2 micro-batches
    grads = tokens * (4096 + 2048) / 2 + tokens * 4096 + routed * (2 * 14336 + 4096)
    assert bwd == pytest.approx(4.0 * layers * grads)


def _dp_comm_s(options: TrainOptions, dp: int, zero: int = 3) -> float:
    plan = ParallelPlan(dp=dp, micro_batch=1, global_batch=dp, zero=zero, recompute="selective")
    cost = train_cost(
        ArchBatch.from_architectures([LLAMA8B]),
        PlanBatch.from_plans([plan]),
        system=load_system("grand-teton-h100", dp),
        workload=WORKLOAD,
        options=options,
    )
    return float(cost.time_breakdown_s["dp_comm"][0])


def test_per_rank_copies_cost_one_launch_per_rank_per_collective() -> None:
    """DeepSpeed 0.3.15's list-based ZeRO-3 collectives: every gather and reduce-scatter
    copies each rank's shard with its own kernel (``zero3_per_rank_copies``)."""
    stack_2021 = TrainOptions(fsdp_prefetch=False, zero3_collectives_per_layer=12)
    copies = replace(stack_2021, zero3_per_rank_copies=True)
    launch_s = load_device("h100-sxm").kernel_launch_s
    layers, calls = LLAMA8B.num_layers, 12
    for dp in (8, 16):
        added = _dp_comm_s(copies, dp) - _dp_comm_s(stack_2021, dp)
        gathers = layers * 2 * calls * dp * launch_s  # forward and backward, on the critical path
        scatters = layers * calls * dp * launch_s  # overlap the next layer's backward at best
        assert gathers <= added <= gathers + scatters
    # ZeRO-1 gathers once per step through one flat buffer: no per-rank copies
    assert _dp_comm_s(copies, 16, zero=1) == _dp_comm_s(stack_2021, 16, zero=1)
