"""Multi-token prediction modules (DeepSeek-V3, arXiv 2412.19437, section 2.2): trained beside
the model, costed in training, absent from inference and from the parameter counts."""

from __future__ import annotations

import dataclasses

import pytest

from cost_models.estimate import estimate
from cost_models.plan import InferenceWorkload, ParallelPlan, TrainWorkload
from hw_profiles.loader import load_system
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, total_params

V3 = load_model("deepseek-v3")
BARE = dataclasses.replace(V3, mtp_layers=0)
SYSTEM = load_system("dgx-h100", 64)
TRAIN = TrainWorkload(seq_len=4096, dtype="bf16")
PLAN = ParallelPlan(tp=1, pp=1, dp=64, ep=64, micro_batch=1, global_batch=64, recompute="full")


def _train(arch: object, plan: ParallelPlan = PLAN) -> dict[str, object]:
    return estimate(arch, SYSTEM, TRAIN, plan=plan, memory_headroom=10.0)  # type: ignore[arg-type]


def _op(report: dict[str, object], name: str) -> dict[str, float]:
    return next(o for o in report["ops_per_microbatch"] if o["name"] == name)  # type: ignore[attr-defined,union-attr]


def test_one_module_adds_a_layer_a_head_pass_and_its_projection() -> None:
    with_mtp, bare = _train(V3), _train(BARE)
    assert _op(with_mtp, "lm_head")["forward_s"] == pytest.approx(
        2 * _op(bare, "lm_head")["forward_s"]
    )
    assert _op(with_mtp, "mtp_proj")["forward_flops"] == pytest.approx(2 * 4096 * 2 * 7168 * 7168)
    assert not any(o["name"] == "mtp_proj" for o in bare["ops_per_microbatch"])  # type: ignore[attr-defined]
    # one more layer out of 61 plus an LM head pass: between 1.5% and 6% more step time
    ratio = float(with_mtp["step_time_s"]) / float(bare["step_time_s"])  # type: ignore[arg-type]
    assert 1.015 < ratio < 1.06
    assert float(with_mtp["hardware_flops_per_token"]) > float(bare["hardware_flops_per_token"])  # type: ignore[arg-type]
    assert with_mtp["model_flops_per_token"] == bare["model_flops_per_token"]  # MFU's work


def test_modules_join_the_balanced_pipeline_split() -> None:
    """61 layers + 1 MTP block over 2 stages: 31 layer slots per stage, as 62 layers would
    be, and as 61 alone (the block takes the slot the odd layer count leaves free)."""
    pp2 = dataclasses.replace(PLAN, pp=2, dp=32, ep=32)
    ref = dataclasses.replace(BARE, num_layers=62)
    assert _op(_train(V3, pp2), "attn_o")["forward_s"] == pytest.approx(
        _op(_train(ref, pp2), "attn_o")["forward_s"]
    )
    mem = "memory_per_device_bytes"
    assert _train(V3, pp2)[mem] == _train(BARE, pp2)[mem]
    assert float(_train(V3)[mem]) > float(_train(BARE)[mem])  # type: ignore[arg-type]


def test_inference_and_parameter_counts_leave_the_modules_out() -> None:
    serve = InferenceWorkload(batch=8, prompt_len=1024, gen_len=128)
    h200 = load_system("dgx-h200", 8)
    plan = ParallelPlan(tp=8, pp=1, dp=1, ep=1, global_batch=1)
    a, b = estimate(V3, h200, serve, plan=plan), estimate(BARE, h200, serve, plan=plan)
    assert a["ttft_s"] == b["ttft_s"] and a["tpot_s"] == b["tpot_s"]
    counts = total_params(ArchBatch.from_architectures([V3, BARE]))
    assert counts[0] == counts[1]


def test_more_modules_than_layers_is_one_line() -> None:
    from search_spaces.architecture import SpecError

    with pytest.raises(SpecError, match=r"mtp_layers: must be <= num_layers \(61\), got 62"):
        dataclasses.replace(V3, mtp_layers=62)
    with pytest.raises(SpecError, match="mtp_layers: must be a non-negative integer"):
        dataclasses.replace(V3, mtp_layers=-1)


def test_deepseek_recompute_policy_re_runs_only_the_up_projections() -> None:
    """DeepSeek-V3 (section 3.2.3) recomputes its norms and MLA up-projections, nothing else:
    less memory than keeping everything, more than also re-running the dense MLPs, and only
    the up-projection GEMMs re-run."""
    from cost_models.stacks import resolve_train
    from cost_models.train.recompute import selective_share

    b = ArchBatch.from_architectures([V3])
    shares = {n: selective_share(b, n, "mla_up_proj") for n in ("attn_q_b", "attn_kv_b", "ffn_up")}
    assert shares == {"attn_q_b": 1.0, "attn_kv_b": 1.0, "ffn_up": 0.0}

    def memory(recompute: str, policy: str) -> float:
        options = resolve_train("megatron-core", {"selective_recompute": policy})[1]
        plan = dataclasses.replace(PLAN, recompute=recompute)
        report = estimate(V3, SYSTEM, TRAIN, plan=plan, options=options, memory_headroom=10.0)
        return float(report["memory_breakdown_bytes"]["activations"])

    kept_all = memory("none", "mla_up_proj")
    up_proj, up_proj_mlp = (
        memory("selective", "mla_up_proj"),
        memory("selective", "mla_up_proj_mlp"),
    )
    assert up_proj_mlp < up_proj < kept_all
