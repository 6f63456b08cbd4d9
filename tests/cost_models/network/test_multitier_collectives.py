"""Collectives that cross an outer tier: TPU v4 pods over DCN, Meta's 1:7 aggregation layer
above 3,072-GPU pods, CloudMatrix384 dies. Expected times are the alpha-beta formulas of
:mod:`cost_models.network.collectives` with the profiles' cited bandwidths."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cost_models.network.collectives import collective, collective_time_s
from hw_profiles.loader import load_system
from hw_profiles.types import System

GB = 1e9


def _peak(system: System, tier: str) -> float:
    t = next(t for t in system.tiers if t.name == tier)
    return t.bandwidth_bytes_per_s * t.efficiency


def test_dp_across_tpu_pods_uses_dcn() -> None:
    """PaLM's 2-way pod-level data parallelism: peers 3,072 chips apart are in two pods."""
    system = load_system("tpu-v4-pod", 6144)
    r = collective(system, op="all_reduce", size_bytes=GB, group_size=2, stride=3072)
    assert r.tiers == ("dcn",)
    # 2 (n-1)/n S / (B_dcn eff) with n = 2
    assert r.time_s == pytest.approx(GB / _peak(system, "dcn"), rel=0.01)


def test_cross_pod_all_reduce_is_hierarchical() -> None:
    """Data parallel over two whole pods (1,024 ranks at stride 8 on 8,192 chips):
    reduce-scatter inside each pod over ICI, the S/512 shard across pods over DCN,
    all-gather back. Its extra time over the same group in one pod is exactly the DCN step,
    2 x (1/2) x (S/512) / B_dcn."""
    size = 64 * GB
    two_pods = load_system("tpu-v4-pod", 8192)
    one_pod = load_system("tpu-v4-pod", 4096)
    t2 = collective(two_pods, op="all_reduce", size_bytes=size, group_size=1024, stride=8)
    t1 = collective(one_pod, op="all_reduce", size_bytes=size, group_size=512, stride=8)
    assert t2.tiers == ("ici-v4", "dcn") and t1.tiers == ("ici-v4",)
    assert t2.algorithm == "hierarchical"
    dcn_step = 2 * 0.5 * (size / 512) / _peak(two_pods, "dcn")
    assert t2.time_s - t1.time_s == pytest.approx(dcn_step, rel=0.01)


def test_cross_pod_shard_is_slower_by_the_dcn_ratio() -> None:
    """The same per-rank exchange between two pods over DCN versus between two chips of a
    pod on one ICI ring (both directions of one torus axis: B_ici / 3, wrap-around link
    missing for 2 members: / 2) differs by the ratio of the tiers' bandwidths."""
    system = load_system("tpu-v4-pod", 8192)
    across = collective_time_s(system, op="all_gather", size_bytes=GB, group_size=2, stride=4096)
    inside = collective_time_s(system, op="all_gather", size_bytes=GB, group_size=2, stride=1)
    ici_pair = _peak(system, "ici-v4") / 3 * 0.5
    assert float(across / inside) == pytest.approx(ici_pair / _peak(system, "dcn"), rel=0.01)


def _unblocked(system: System) -> System:
    """The same cluster with a non-blocking aggregation layer (the NIC rate throughout)."""
    nvlink, pod, agg = system.tiers
    full = replace(agg, bandwidth_bytes_per_s=pod.bandwidth_bytes_per_s)
    return replace(system, tiers=(nvlink, pod, full))


def test_one_rank_per_pod_is_bounded_by_the_spine() -> None:
    """Llama 3 (arXiv 2407.21783 section 3.3.1): 1:7 above the 3,072-GPU pod. Five ranks
    3,072 GPUs apart (every GPU of a pod sends out of it at once): the aggregation share
    50/7 GB/s per GPU bounds the all-reduce, 2 (n-1)/n S / (B/7 eff)."""
    system = load_system("grand-teton-h100", 16384)
    r = collective(system, op="all_reduce", size_bytes=GB, group_size=5, stride=3072)
    assert r.tiers == ("aggregation",)
    assert r.time_s == pytest.approx(2 * 4 / 5 * GB / _peak(system, "aggregation"), rel=0.01)
    free = collective(_unblocked(system), op="all_reduce", size_bytes=GB, group_size=5, stride=3072)
    assert r.time_s / free.time_s == pytest.approx(7.0, rel=0.01)


def test_16k_gpu_collective_sees_the_spine() -> None:
    """A data-parallel group over 16,384 GPUs with 3 ranks per pod (stride 1,024) crosses
    the aggregation layer and is slower than on a non-blocking spine; a group inside one
    pod is not affected."""
    system = load_system("grand-teton-h100", 16384)
    kw = {"op": "all_reduce", "size_bytes": GB}
    wide = collective(system, group_size=16, stride=1024, **kw)  # type: ignore[arg-type]
    assert wide.tiers == ("rdma-400g", "aggregation")
    free = collective(_unblocked(system), group_size=16, stride=1024, **kw)  # type: ignore[arg-type]
    assert wide.time_s > 2.0 * free.time_s
    # whatever the algorithm, 2(n-1)/n S must leave the pod's three ranks through their
    # three spine shares, or the ring crosses at the NIC rate: the spine bounds it below
    spine_bound = 2 * 15 / 16 * GB / (3 * _peak(system, "aggregation"))
    assert wide.time_s >= spine_bound * 0.99
    inside = collective(system, group_size=3072, stride=1, **kw)  # type: ignore[arg-type]
    assert "aggregation" not in inside.tiers
    assert inside.time_s == pytest.approx(
        collective(_unblocked(system), group_size=3072, stride=1, **kw).time_s  # type: ignore[arg-type]
    )


def test_cloudmatrix_die_pair_and_supernode() -> None:
    """Two dies of one package share the on-package link (270 GB/s per direction); 768 dies
    reach each other over the Unified Bus, which stays the scale-up fabric."""
    system = load_system("cloudmatrix-384", 768)
    pair = collective(system, op="all_gather", size_bytes=GB, group_size=2)
    assert pair.tiers == ("die-to-die",)
    assert pair.time_s == pytest.approx(0.5 * GB / _peak(system, "die-to-die"), rel=0.01)
    whole = collective(system, op="all_to_all", size_bytes=GB, group_size=768)
    assert whole.tiers == ("die-to-die", "unified-bus")
    ep320 = collective(system, op="all_to_all", size_bytes=GB, group_size=320)
    assert "rdma-plane" not in ep320.tiers


@pytest.mark.parametrize("op", ["all_reduce", "reduce_scatter", "all_gather"])
@pytest.mark.parametrize("size", [1e6, 1e9])
@pytest.mark.parametrize(("group", "stride"), [(2048, 8), (16384, 1), (16, 1024), (5, 3072)])
def test_an_aggregation_layer_never_speeds_a_collective_up(
    op: str, size: float, group: int, stride: int
) -> None:
    """The same cluster with one flat 400G tier (no pods) is never slower: the second
    network tier adds a bound, not a shortcut (NCCL's inter-node ring is not staged at the
    aggregation layer, so it keeps its n - 1 network steps)."""
    system = load_system("grand-teton-h100", 16384)
    nvlink, pod, _ = system.tiers
    flat = replace(system, tiers=(nvlink, replace(pod, group_size=24576)))
    kw = {"op": op, "size_bytes": size, "group_size": group, "stride": stride}
    t = float(collective_time_s(system, **kw))  # type: ignore[arg-type]
    t_flat = float(collective_time_s(flat, **kw))  # type: ignore[arg-type]
    assert t >= t_flat * (1 - 1e-9)
    if group * stride // 3072 and 3072 // stride >= 384:  # hundreds of ranks per pod
        assert t == pytest.approx(t_flat)  # ... send a small share across: no bound
