"""Behaviour of the inference cost model (prefill, decode, KV cache, memory, plans)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cost_models.inference.cost import TIME_KEYS, inference_arrays
from cost_models.inference.planner import candidate_plans, max_batch_that_fits
from cost_models.inference.report import estimate_inference
from cost_models.plan import InferenceWorkload, ParallelPlan, PlanError
from hw_profiles.loader import load_system
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, model_counts


def _plan(tp: int = 1, pp: int = 1, dp: int = 1, ep: int = 1) -> ParallelPlan:
    return ParallelPlan(tp=tp, pp=pp, dp=dp, ep=ep, global_batch=dp)


def test_decode_is_memory_bound_at_batch_one() -> None:
    arch, system = load_model("llama2-7b"), load_system("dgx-a100", 1)
    r = estimate_inference(arch, system, InferenceWorkload(batch=1, prompt_len=128, gen_len=128))
    weights = model_counts(arch).params_total * 2.0
    roofline = weights / system.device.memory_bandwidth_bytes_per_s
    # TPOT is the weight read at HBM speed plus efficiency and launch losses: within 2x
    assert roofline <= r["tpot_s"] <= 2.0 * roofline
    parts = r["decode_time_breakdown_s"]
    assert parts["memory"] > 10 * parts["compute"]


def test_prefill_is_compute_bound() -> None:
    arch, system = load_model("llama2-7b"), load_system("dgx-a100", 1)
    w = InferenceWorkload(batch=8, prompt_len=2048, gen_len=16)
    r = estimate_inference(arch, system, w, mode="prefill")
    parts = r["time_breakdown_s"]
    assert parts["compute"] > 0.7 * r["ttft_s"]
    flops = model_counts(arch, seq_len=2048).flops_per_token * 8 * 2048
    assert r["ttft_s"] >= flops / system.device.peak("bf16")


def test_breakdowns_sum_and_e2e() -> None:
    arch, system = load_model("llama3-70b"), load_system("dgx-h100", 8)
    w = InferenceWorkload(batch=4, prompt_len=1000, gen_len=100)
    r = estimate_inference(arch, system, w, plan=_plan(tp=8))
    assert set(r["prefill_time_breakdown_s"]) == set(TIME_KEYS)
    assert sum(r["prefill_time_breakdown_s"].values()) == pytest.approx(r["ttft_s"])
    assert sum(r["decode_time_breakdown_s"].values()) == pytest.approx(r["tpot_s"])
    assert sum(r["memory_breakdown_bytes"].values()) == pytest.approx(r["memory_per_device_bytes"])
    assert r["e2e_s"] == pytest.approx(r["ttft_s"] + 99 * r["tpot_s"])
    assert r["decode_time_breakdown_s"]["tp_comm"] > 0


def test_tensor_parallelism_reduces_tpot() -> None:
    arch = load_model("llama3-70b")
    w = InferenceWorkload(batch=1, prompt_len=512, gen_len=128)
    tpot = [
        estimate_inference(arch, load_system("dgx-h100", tp), w, plan=_plan(tp=tp))["tpot_s"]
        for tp in (2, 4, 8)
    ]
    assert tpot[0] > tpot[1] > tpot[2]


def test_quantised_weights_reduce_decode_time() -> None:
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    tpot = {
        dtype: estimate_inference(
            arch, system, InferenceWorkload(batch=1, weight_dtype=dtype), plan=_plan()
        )["tpot_s"]
        for dtype in ("bf16", "fp8", "int4")
    }
    assert tpot["bf16"] > tpot["fp8"] > tpot["int4"]
    # weights dominate at batch 1: halving them saves well over a third of the step
    assert tpot["fp8"] < 0.7 * tpot["bf16"]


def test_fp8_kv_cache_halves_kv_bytes() -> None:
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    bf16 = estimate_inference(arch, system, InferenceWorkload(batch=16), plan=_plan())
    fp8 = estimate_inference(
        arch, system, InferenceWorkload(batch=16, kv_dtype="fp8"), plan=_plan()
    )
    assert fp8["kv_cache_bytes"] == pytest.approx(bf16["kv_cache_bytes"] / 2)
    assert fp8["tpot_s"] < bf16["tpot_s"]


def test_mla_kv_cache_smaller_than_gqa_for_deepseek() -> None:
    arch = load_model("deepseek-v3")
    # the same model with 8-group GQA attention of 128-wide heads instead of MLA
    gqa = dataclasses.replace(arch, name="dsv3-gqa", mla=None, num_kv_heads=8, head_dim=128)
    system = load_system("dgx-h100", 16)
    w = InferenceWorkload(batch=4, prompt_len=4096, gen_len=256, weight_dtype="fp8")
    mla_kv = estimate_inference(arch, system, w)["kv_cache_bytes"]
    gqa_kv = estimate_inference(gqa, system, w)["kv_cache_bytes"]
    # DeepSeek-V3 MLA: 61 layers x 576 x 2 B = 70,272 B/token (SOURCES.md, DeepSeek-V2 2.1.2)
    assert mla_kv == pytest.approx(4 * (4096 + 256) * 70_272)
    assert gqa_kv == pytest.approx(mla_kv * (2 * 8 * 128) / 576)


def test_kv_cache_grows_with_context() -> None:
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    short = estimate_inference(arch, system, InferenceWorkload(prompt_len=1000, gen_len=24))
    long = estimate_inference(arch, system, InferenceWorkload(prompt_len=4000, gen_len=96))
    assert long["kv_cache_bytes"] == pytest.approx(4 * short["kv_cache_bytes"])
    assert long["tpot_s"] > short["tpot_s"]


def test_max_batch_fits_and_one_more_does_not() -> None:
    arch, system = load_model("llama3-70b"), load_system("dgx-h100", 4)
    w = InferenceWorkload(batch=1, prompt_len=2048, gen_len=512)
    for plan in (_plan(tp=4), _plan(tp=2, dp=2)):
        best = max_batch_that_fits(arch, system, w, plan)
        assert best > 0
        at = estimate_inference(arch, system, dataclasses.replace(w, batch=best), plan=plan)
        over = estimate_inference(arch, system, dataclasses.replace(w, batch=best + 1), plan=plan)
        assert at["fits"] and not over["fits"]


def test_model_that_cannot_fit_reports_fits_false() -> None:
    arch, system = load_model("llama3.1-405b"), load_system("dgx-h100", 1)
    r = estimate_inference(arch, system, InferenceWorkload())
    assert r["fits"] is False
    assert r["max_batch"] == 0
    assert r["memory_breakdown_bytes"]["weights"] > system.device.capacity_bytes


def test_auto_plan_fits_and_is_fastest() -> None:
    arch, system = load_model("llama3-70b"), load_system("dgx-h100", 8)
    w = InferenceWorkload(batch=8, prompt_len=1024, gen_len=128)
    chosen = estimate_inference(arch, system, w)
    assert chosen["fits"]
    for plan in candidate_plans(arch, system):
        other = estimate_inference(arch, system, w, plan=plan)
        assert not other["fits"] or other["e2e_s"] >= chosen["e2e_s"] - 1e-12


def test_moe_decode_reads_only_touched_experts() -> None:
    arch, system = load_model("mixtral-8x7b"), load_system("dgx-h100", 2)
    plan = _plan(tp=2)
    one = estimate_inference(arch, system, InferenceWorkload(batch=1), plan=plan)
    many = estimate_inference(arch, system, InferenceWorkload(batch=64), plan=plan)
    # batch 1 touches top_k = 2 of 8 experts per layer, batch 64 touches (almost) all 8
    ratio = many["decode_time_breakdown_s"]["memory"] / one["decode_time_breakdown_s"]["memory"]
    assert ratio > 2.0


def test_expert_parallel_plan_has_all_to_all() -> None:
    arch, system = load_model("deepseek-v3"), load_system("dgx-h100", 16)
    w = InferenceWorkload(batch=32, weight_dtype="fp8")
    r = estimate_inference(arch, system, w, plan=_plan(tp=8, dp=2, ep=16))
    assert r["decode_time_breakdown_s"]["ep_comm"] > 0
    no_ep = estimate_inference(arch, system, w, plan=_plan(tp=8, dp=2, ep=1))
    assert no_ep["decode_time_breakdown_s"]["ep_comm"] == 0
    assert r["memory_breakdown_bytes"]["weights"] < no_ep["memory_breakdown_bytes"]["weights"]


def test_pipeline_parallel_cuts_memory_not_latency() -> None:
    arch, system = load_model("llama3-70b"), load_system("dgx-h100", 8)
    w = InferenceWorkload(batch=1, prompt_len=512, gen_len=64)
    tp8 = estimate_inference(arch, system, w, plan=_plan(tp=8))
    tp4pp2 = estimate_inference(arch, system, w, plan=_plan(tp=4, pp=2))
    assert tp4pp2["decode_time_breakdown_s"]["pp_comm"] > 0
    assert tp4pp2["tpot_s"] > tp8["tpot_s"]
    assert tp4pp2["memory_per_device_bytes"] == pytest.approx(
        tp8["memory_per_device_bytes"], rel=0.25
    )


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        (dict(tp=3), "tp*pp*dp"),  # 3 != 8 devices
        (dict(tp=8, pp=2), "tp*pp*dp"),
        (dict(tp=4, dp=2, ep=3), "ep"),  # ParallelPlan: ep must divide dp*cp*tp
    ],
)
def test_invalid_plans_name_the_field(plan: dict[str, int], field: str) -> None:
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 8)
    with pytest.raises(PlanError, match=field.replace("*", r"\*")):
        estimate_inference(arch, system, InferenceWorkload(), plan=_plan(**plan))


def test_tp_must_divide_heads_and_ep_may_leave_redundant_experts() -> None:
    system = load_system("dgx-h100", 8)
    odd = dataclasses.replace(load_model("llama3-8b"), name="odd", num_heads=12, num_kv_heads=12)
    with pytest.raises(PlanError, match="tp: must divide num_heads"):
        estimate_inference(odd, system, InferenceWorkload(), plan=_plan(tp=8))
    mixtral = load_model("mixtral-8x7b")
    assert mixtral.moe is not None
    six = dataclasses.replace(
        mixtral, name="six", moe=dataclasses.replace(mixtral.moe, num_experts=6)
    )
    # ep 4 over 6 experts: two experts per rank, two of the eight slots redundant copies
    weights = {
        ep: estimate_inference(six, system, InferenceWorkload(), plan=_plan(tp=1, dp=8, ep=ep))[
            "memory_breakdown_bytes"
        ]["weights"]
        for ep in (1, 2, 4)
    }
    expert_bytes_4 = weights[1] - weights[4]  # what ep 4 saves against a full replica
    expert_bytes_2 = weights[1] - weights[2]
    # ep 2 keeps 3 of 6 experts, ep 4 keeps ceil(6/4) = 2 of 6: saves 4/6 vs 3/6 of the experts
    assert expert_bytes_4 / expert_bytes_2 == pytest.approx((4 / 6) / (3 / 6))


def test_vectorised_core_matches_scalar_api() -> None:
    names = ["llama3-8b", "mixtral-8x7b", "deepseek-v3"]
    archs = [load_model(n) for n in names]
    system = load_system("dgx-h100", 8)
    w = InferenceWorkload(batch=8, prompt_len=512, gen_len=64, weight_dtype="fp8")
    r = inference_arrays(ArchBatch.from_architectures(archs), system, tp=8, pp=1, ep=1, dp=1,
                         batch=8, prompt_len=512, gen_len=64, weight_dtype="fp8",
                         kv_dtype="bf16")  # fmt: skip
    for i, arch in enumerate(archs):
        one = estimate_inference(arch, system, w, plan=_plan(tp=8))
        assert r.tpot_s[i] == pytest.approx(one["tpot_s"])
        assert r.ttft_s[i] == pytest.approx(one["ttft_s"])
    assert np.all(r.tpot_s > 0)


def test_fixed_degrees_constrain_the_auto_plan() -> None:
    arch, system = load_model("llama3-70b"), load_system("dgx-h100", 8)
    w = InferenceWorkload(batch=8)
    r = estimate_inference(arch, system, w, fixed={"tp": 4})
    assert r["plan"]["tp"] == 4 and r["plan"]["tp"] * r["plan"]["pp"] * r["plan"]["dp"] == 8
    with pytest.raises(PlanError, match=r"tp\*pp\*dp: must equal the device count 8"):
        estimate_inference(arch, system, w, fixed={"tp": 3})
    with pytest.raises(PlanError, match="vpp: not an inference plan field"):
        estimate_inference(arch, system, w, fixed={"vpp": 2})


def test_gemm_overlap_spans_roofline_to_sum() -> None:
    """A GEMM near the ridge point costs max(compute, memory) when everything overlaps and
    compute + memory when nothing does; element-wise ops keep the plain roofline."""
    from cost_models.inference.ops import Op, op_times

    device = load_system("dgx-a100", 1).device
    one = np.ones(1)
    # 128 x 4096 x 4096 fp16 GEMM: intensity ~120 FLOP/B, close to the A100's ridge point
    flops, nbytes = 2.0 * 128 * 4096 * 4096 * one, (4096 * 4096 + 2 * 128 * 4096) * 2.0 * one
    gemm = Op(name="g", kind="gemm", flops=flops, bytes=nbytes, calls=one, eff_flops=flops)
    elem = Op(name="e", kind="elementwise", flops=0 * one, bytes=nbytes, calls=one,
              eff_flops=0 * one)  # fmt: skip

    def busy_s(op: Op, overlap: float) -> float:
        t = op_times([op], device, compute_dtype="fp16", gemm_derate=1.0, gemm_overlap=overlap)
        return float(t["compute"][0] + t["memory"][0])

    t_m = float(nbytes[0]) / (device.memory_bandwidth_bytes_per_s * device.memory_efficiency)
    roof, added = busy_s(gemm, 1.0), busy_s(gemm, 0.0)
    assert roof >= t_m
    t_c = roof if roof > t_m else None  # the longer term is the roofline time
    assert t_c is not None, "the test GEMM must be compute-bound on the A100"
    assert added == pytest.approx(t_c + t_m)
    assert busy_s(gemm, 0.5) == pytest.approx(t_c + 0.5 * t_m)
    assert busy_s(elem, 0.0) == pytest.approx(busy_s(elem, 1.0)) == pytest.approx(t_m)


def test_chunked_prefill_runs_the_prompt_in_budget_sized_iterations() -> None:
    """A 32k-token prompt under an 8,192-token budget: four iterations, each reading the
    weights and paying the per-step overhead; a quarter of the activation workspace. A budget
    at least the prompt changes nothing."""
    from cost_models.inference.cost import prefill_chunks
    from cost_models.options import ServeOptions

    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    b = ArchBatch.from_architectures([arch])

    def run(chunk: int) -> tuple[float, float, float]:
        serve = ServeOptions(step_overhead_s=1e-3, prefill_chunk_tokens=chunk)
        r = inference_arrays(b, system, tp=1, pp=1, ep=1, dp=1, batch=1, prompt_len=32768,
                             gen_len=8, weight_dtype="bf16", kv_dtype="bf16", serve=serve)  # fmt: skip
        other = float(r.prefill_breakdown_s["other"][0])
        return float(r.ttft_s[0]), float(r.memory_breakdown_bytes["activations"][0]), other

    assert prefill_chunks(np.array([32768.0, 8192.0, 100.0]), ServeOptions(prefill_chunk_tokens=8192)).tolist() == [4.0, 1.0, 1.0]  # fmt: skip
    whole, same, chunked = run(0), run(32768), run(8192)
    assert same == pytest.approx(whole)
    assert chunked[0] > whole[0]  # four weight reads, launches and step overheads instead of one
    assert chunked[2] - whole[2] >= 3 * 1e-3  # three more per-step overheads at least
    logits = 128256 * 4.0  # fp32 logits of the last position, not chunked
    assert chunked[1] - logits == pytest.approx((whole[1] - logits) / 4.0)


def test_prefill_chunk_budget_out_of_range_is_one_line() -> None:
    from cost_models.stacks import resolve_serve

    with pytest.raises(ValueError, match=r"prefill_chunk_tokens"):
        resolve_serve("vllm", {"prefill_chunk_tokens": "-5"})
    assert resolve_serve("vllm")[1].prefill_chunk_tokens == 8192


@pytest.mark.parametrize("chunk", [0, 8192])
def test_max_batch_is_the_largest_that_fits_with_and_without_chunked_prefill(chunk: int) -> None:
    """Memory is not affine in the batch under chunked prefill (the workspace stops at the
    budget): the search still returns the largest batch that fits, checked by brute force."""
    from cost_models.inference.planner import evaluate_plans
    from cost_models.options import ServeOptions

    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 1)
    workload = InferenceWorkload(batch=1, prompt_len=2048, gen_len=256)
    serve = ServeOptions(prefill_chunk_tokens=chunk)
    found = max_batch_that_fits(arch, system, workload, _plan(), serve=serve, memory_headroom=0.9)
    batches = np.arange(1, 1024)
    r = evaluate_plans(arch, system, workload, [_plan()] * len(batches), batch=batches, serve=serve)
    fits = r.memory_per_device_bytes <= 0.9 * system.device.capacity_bytes
    assert found == int(batches[fits].max())
    assert found < 1023  # the brute-force range covers the bound
