"""Hybrid sharding (``dp_replicate``): ZeRO shards within a replica of ``dp / dp_replicate``
ranks and the replicas all-reduce their gradient shards (PyTorch FSDP ``HYBRID_SHARD``;
PaLM's FSDP within a pod and data parallelism across pods, arXiv 2204.02311 section 4), and
the parallel attention + MLP block (one TP all-reduce per layer instead of two)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cost_models.inference.cost import inference_arrays
from cost_models.network.collectives import collective_time_s
from cost_models.options import TrainOptions
from cost_models.plan import ParallelPlan, PlanError, TrainWorkload
from cost_models.plan_batch import PlanBatch
from cost_models.plans import enumerate_plans
from cost_models.train.step import TrainCost, train_cost
from hw_profiles.loader import load_system
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, total_params


def _cost(arch: Architecture, plan: ParallelPlan, options: TrainOptions | None = None) -> TrainCost:
    return train_cost(
        ArchBatch.from_architectures([arch]),
        PlanBatch.from_plans([plan]),
        system=load_system("dgx-h100", plan.num_devices),
        workload=TrainWorkload(seq_len=4096),
        options=options or TrainOptions(),
    )


def _bytes(cost: TrainCost, key: str) -> float:
    return float(cost.memory_breakdown_bytes[key][0])


def test_replicas_shard_the_model_state_over_their_own_ranks_only() -> None:
    arch = load_model("llama3-8b")
    n = float(total_params(ArchBatch.from_architectures([arch]))[0])
    full = _cost(arch, ParallelPlan(dp=16, zero=3, global_batch=16))
    hybrid = _cost(arch, ParallelPlan(dp=16, zero=3, dp_replicate=2, global_batch=16))
    # 2-byte weights sharded 8 ways (the ranks of one replica) instead of 16; the prefetch
    # buffers of gathered layers are the same in both
    extra = _bytes(hybrid, "weights") - _bytes(full, "weights")
    assert extra == pytest.approx(2.0 * n / 8 - 2.0 * n / 16, rel=1e-9)
    for key in ("gradients", "optimizer"):
        assert _bytes(hybrid, key) == pytest.approx(2.0 * _bytes(full, key))


def test_replicas_add_one_all_reduce_of_their_shard_per_step() -> None:
    """Two DGX H100 nodes, one replica per node, nothing overlapped (so that the collectives
    themselves are compared): each node gathers and reduce-scatters as an 8-GPU FSDP job
    alone would, and once per step every GPU all-reduces its fp32 gradient shard with its
    peer in the other node (8 devices apart). Nothing else differs."""
    arch = load_model("llama3-8b")
    n = float(total_params(ArchBatch.from_architectures([arch]))[0])
    serial = TrainOptions(fsdp_prefetch=False, dp_overlap=False)
    hybrid = _cost(arch, ParallelPlan(dp=16, zero=3, dp_replicate=2, global_batch=64), serial)
    one_node = _cost(arch, ParallelPlan(dp=8, zero=3, global_batch=32), serial)
    added_s = float(hybrid.time_breakdown_s["dp_comm"][0] - one_node.time_breakdown_s["dp_comm"][0])
    shard_ar_s = collective_time_s(load_system("dgx-h100", 16), op="all_reduce",
                                   size_bytes=np.array([n / 8 * serial.grad_bytes]),
                                   group_size=np.array([2.0]), stride=np.array([8.0]))  # fmt: skip
    assert added_s == pytest.approx(float(np.asarray(shard_ar_s)[0]), rel=1e-9)
    assert added_s > 0.05  # 4 GB over one 400 Gb/s NIC per GPU: ~80 ms


def test_replica_count_is_checked_in_one_line() -> None:
    with pytest.raises(PlanError, match=r"^dp_replicate: must divide dp \(8\), got 3$"):
        ParallelPlan(dp=8, zero=3, dp_replicate=3, global_batch=8)
    with pytest.raises(PlanError, match=r"^dp_replicate: replicas of a sharded state need zero"):
        ParallelPlan(dp=8, dp_replicate=2, global_batch=8)
    arch, system = load_model("llama3-8b"), load_system("dgx-h100", 16)
    plans = enumerate_plans(arch, system, TrainWorkload(seq_len=4096), fixed={"dp_replicate": 2})
    assert len(plans) > 0
    assert np.all(plans.zero > 0) and np.all(np.mod(plans.dp, 2) == 0)
    assert np.all(plans.dp_replicate == 2)
    with pytest.raises(PlanError, match=r"^dp_replicate: replicas of a sharded state need zero"):
        enumerate_plans(arch, system, TrainWorkload(seq_len=4096),
                        fixed={"dp_replicate": 2, "zero": 0})  # fmt: skip


def test_parallel_block_halves_tensor_parallel_all_reduces() -> None:
    arch = load_model("llama3-8b")
    parallel = dataclasses.replace(arch, parallel_block=True)
    plan = ParallelPlan(tp=8, global_batch=1)
    serial_s = float(_cost(arch, plan).time_breakdown_s["tp_comm"][0])
    parallel_s = float(_cost(parallel, plan).time_breakdown_s["tp_comm"][0])
    assert parallel_s == pytest.approx(serial_s / 2.0)

    def prefill_tp_s(a: Architecture) -> float:
        r = inference_arrays(ArchBatch.from_architectures([a]), load_system("dgx-h100", 8),
                             tp=8, pp=1, ep=1, dp=1, batch=1, prompt_len=512, gen_len=8,
                             weight_dtype="bf16", kv_dtype="bf16")  # fmt: skip
        return float(r.prefill_breakdown_s["tp_comm"][0])

    assert prefill_tp_s(parallel) == pytest.approx(prefill_tp_s(arch) / 2.0)


def test_expert_groups_stay_inside_one_replica() -> None:
    """EP ranks are drawn from one replica's devices (torchtitan carves EP out of the sharded
    data-parallel dimension): EP 16 over two replicas of 8 is refused in one line."""
    ParallelPlan(dp=16, ep=8, zero=3, dp_replicate=2, global_batch=16)
    with pytest.raises(PlanError, match=r"^ep: must divide the devices of one replica"):
        ParallelPlan(dp=16, ep=16, zero=3, dp_replicate=2, global_batch=16)
    arch, system = load_model("mixtral-8x7b"), load_system("dgx-h100", 16)
    plans = enumerate_plans(arch, system, TrainWorkload(seq_len=4096),
                            fixed={"dp_replicate": 2, "tp": 1, "pp": 1, "cp": 1})  # fmt: skip
    assert len(plans) > 0 and np.all(plans.ep <= 8)
