"""MaxText's ``remat_policy: minimal`` (``selective_recompute: dots``): a layer keeps its input
and its weight matmuls' outputs, re-runs the attention and the element-wise ops, and re-runs
no weight matmul."""

from __future__ import annotations

import pytest

from cost_models.options import TrainOptions
from cost_models.plan import ParallelPlan, Recompute, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.stacks import resolve_train
from cost_models.train.memory import activation_bytes_per_token
from cost_models.train.ops import StageShape
from cost_models.train.recompute import selective_share
from cost_models.train.step import train_cost
from hw_profiles.loader import load_system
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch

DOTS = TrainOptions(selective_recompute="dots")


def _dense_bytes(recompute: Recompute, options: TrainOptions, *, tp: int = 4) -> float:
    arch = ArchBatch.from_architectures([load_model("llama3-8b")])
    plan = ParallelPlan(
        tp=tp, dp=2, sequence_parallel=True, micro_batch=1, global_batch=2, recompute=recompute
    )
    pb = PlanBatch.from_plans([plan])
    dense, _ = activation_bytes_per_token(
        arch, pb, StageShape.of(arch, pb, seq_len=8192), options=options
    )
    return float(dense[0])


def test_a_layer_keeps_its_input_q_k_v_and_the_up_projection_outputs() -> None:
    d, q, kv, ff, t = 4096, 4096, 1024, 14336, 4
    expected = 2.0 * (d / t + (q + 2 * kv) / t + 2 * ff / t)  # bf16; SP shards the input
    assert _dense_bytes("selective", DOTS) == pytest.approx(expected, rel=1e-9)


def test_it_keeps_less_than_attention_only_recompute_and_more_than_full() -> None:
    kept = _dense_bytes("selective", DOTS)
    assert _dense_bytes("full", DOTS) < kept < _dense_bytes("selective", TrainOptions())


def test_no_weight_matmul_is_rerun_and_the_element_wise_ops_are() -> None:
    arch = ArchBatch.from_architectures([load_model("llama3-8b")])
    for name in ("attn_q", "attn_kv", "attn_o", "ffn_up", "ffn_down", "lm_head"):
        assert selective_share(arch, name, "dots") == 0.0
    for name in ("attention", "softmax", "norms", "rope", "activation"):
        assert selective_share(arch, name, "dots") == 1.0


def test_time_and_memory_against_the_attention_policy() -> None:
    """Same recomputed FLOPs (HFU) as attention-only recompute, a little more time (the
    element-wise re-runs), less memory."""
    arch = ArchBatch.from_architectures([load_model("llama3-8b")])
    plan = PlanBatch.from_plans(
        [
            ParallelPlan(
                tp=8, sequence_parallel=True, micro_batch=1, global_batch=8, recompute="selective"
            )
        ]
    )
    system = load_system("dgx-h100", num_devices=8)
    work = TrainWorkload(seq_len=8192)
    attn = train_cost(arch, plan, system=system, workload=work, options=TrainOptions())
    dots = train_cost(arch, plan, system=system, workload=work, options=DOTS)
    assert float(dots.hfu[0]) * float(dots.step_time_s[0]) == pytest.approx(
        float(attn.hfu[0]) * float(attn.step_time_s[0]), rel=1e-9
    )
    assert float(dots.step_time_s[0]) > float(attn.step_time_s[0])
    assert float(dots.memory_per_device_bytes[0]) < float(attn.memory_per_device_bytes[0])


def test_the_maxtext_stack_states_it() -> None:
    _, options = resolve_train("maxtext")
    assert options.selective_recompute == "dots"
    assert options.overhead_bytes < TrainOptions().overhead_bytes  # no CUDA context on TPU
