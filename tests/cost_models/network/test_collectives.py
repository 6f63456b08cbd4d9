"""Behaviour of the collective model: limits, mapping onto tiers, vectorisation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cost_models.network.collectives import (
    COLLECTIVE_OPS,
    CollectiveError,
    bus_bandwidth_factor,
    collective,
    collective_time_s,
)
from hw_profiles.loader import load_device, load_system
from hw_profiles.types import System, Tier
from nas.cli import app

GIB = 2**30


@pytest.fixture(scope="module")
def h100() -> System:
    return load_system("dgx-h100", num_devices=1024)


@pytest.mark.parametrize("name", ["dgx-h100", "mi300x-oam8", "tpu-v5p-pod", "tpu-v5e-pod"])
@pytest.mark.parametrize("op", COLLECTIVE_OPS)
def test_time_grows_with_size(name: str, op: str) -> None:
    system = load_system(name, num_devices=512)
    sizes = np.logspace(0, 10, 41)
    for group, stride in [(8, 1), (16, 1), (64, 8), (256, 2)]:
        t = collective_time_s(system, op=op, size_bytes=sizes, group_size=group, stride=stride)  # type: ignore[arg-type]
        assert np.all(np.diff(t) >= 0), (name, op, group, stride)
        assert np.all(t > 0)


def test_small_messages_are_latency_bound(h100: System) -> None:
    """8 ranks on NVLink, 8 bytes: NCCL's LL ring, base 3.6 us + 14 steps x 0.47 us
    (NCCL tuning.cc baseLat/hwLat); the payload adds almost nothing."""
    t_tiny = float(collective_time_s(h100, op="all_reduce", size_bytes=8, group_size=8))
    t_1k = float(collective_time_s(h100, op="all_reduce", size_bytes=1024, group_size=8))
    alpha_ll = h100.tiers[0].latency_s * 0.47 / 1.9
    assert t_tiny == pytest.approx(3.6e-6 + 2 * 7 * alpha_ll, rel=0.01)
    assert t_1k == pytest.approx(t_tiny, rel=0.05)
    assert collective(h100, op="all_reduce", size_bytes=8, group_size=8).protocol == "LL"


def test_large_ring_all_reduce_is_bandwidth_bound(h100: System) -> None:
    """Ring all-reduce: 2(n-1)/n * S / (B * eff) (Patarasuk & Yuan 2009)."""
    tier = h100.tiers[0]
    size = 8 * GIB
    expected = 2 * 7 / 8 * size / (tier.bandwidth_bytes_per_s * tier.efficiency)
    result = collective(h100, op="all_reduce", size_bytes=size, group_size=8)
    assert result.algorithm == "ring"
    assert result.time_s == pytest.approx(expected, rel=0.01)
    assert result.bus_bandwidth_bytes_per_s == pytest.approx(
        tier.bandwidth_bytes_per_s * tier.efficiency, rel=0.01
    )


def test_reduce_scatter_and_all_gather_are_half_an_all_reduce(h100: System) -> None:
    ar = float(collective_time_s(h100, op="all_reduce", size_bytes=4 * GIB, group_size=8))
    for op in ("reduce_scatter", "all_gather"):
        half = float(collective_time_s(h100, op=op, size_bytes=4 * GIB, group_size=8))  # type: ignore[arg-type]
        assert half == pytest.approx(ar / 2, rel=0.01)


def test_group_mapping_onto_tiers(h100: System) -> None:
    """TP group of 8 stays on NVLink; a DP group with stride 8 crosses the NICs."""
    tp = collective(h100, op="all_reduce", size_bytes=GIB, group_size=8, stride=1)
    dp = collective(h100, op="all_reduce", size_bytes=GIB, group_size=8, stride=8)
    both = collective(h100, op="all_reduce", size_bytes=GIB, group_size=64, stride=1)
    assert tp.tiers == ("nvlink4",)
    assert dp.tiers == ("ib-ndr",)
    assert both.tiers == ("nvlink4", "ib-ndr")
    nic = h100.tiers[1].bandwidth_bytes_per_s * h100.tiers[1].efficiency
    # one rank per node: every rank drives its own NIC (one rail per GPU)
    assert dp.bus_bandwidth_bytes_per_s == pytest.approx(nic, rel=0.15)
    assert dp.time_s > 5 * tp.time_s


def test_reduce_scatter_at_scale_is_hierarchical(h100: System) -> None:
    """1024 ranks: a flat ring pays ~1000 latency steps, so the staged algorithm (RS in the
    node, RS across nodes per rail on S/8) wins at moderate sizes."""
    result = collective(h100, op="reduce_scatter", size_bytes=2**26, group_size=1024)
    assert result.algorithm == "hierarchical"
    nvl, nic = (t.bandwidth_bytes_per_s * t.efficiency for t in h100.tiers)
    transfer = 7 / 8 * 2**26 / nvl + 127 / 128 * 2**26 / 8 / nic
    assert transfer < result.time_s < transfer + 128 * 10 * h100.tiers[1].latency_s


def test_all_to_all_across_nodes_is_nic_bound(h100: System) -> None:
    """EP16 over two nodes: half of each rank's bytes leave the node through its NIC."""
    size = 4 * GIB
    nic = h100.tiers[1].bandwidth_bytes_per_s * h100.tiers[1].efficiency
    t = float(collective_time_s(h100, op="all_to_all", size_bytes=size, group_size=16))
    assert t == pytest.approx(size / 2 / nic, rel=0.01)


def test_p2p_picks_the_tier_between_the_two_ranks(h100: System) -> None:
    near = collective(h100, op="p2p", size_bytes=GIB, group_size=2, stride=1)
    far = collective(h100, op="p2p", size_bytes=GIB, group_size=2, stride=8)
    assert near.tiers == ("nvlink4",) and far.tiers == ("ib-ndr",)
    assert far.time_s / near.time_s == pytest.approx((450 * 0.82) / (50 * 0.94), rel=0.02)


def test_full_mesh_subgroup_uses_only_its_links() -> None:
    """MI300X: 7 Infinity Fabric links per GPU; a pair of GPUs has one of them."""
    mi300x = load_system("mi300x-oam8")
    tier = mi300x.tiers[0]
    pair = collective(mi300x, op="p2p", size_bytes=GIB, group_size=2)
    link = tier.bandwidth_bytes_per_s * tier.efficiency / 7
    assert pair.algorithm_bandwidth_bytes_per_s == pytest.approx(link, rel=0.01)
    full = collective(mi300x, op="all_reduce", size_bytes=GIB, group_size=8)
    assert full.algorithm == "direct"


def test_torus_dimension_ordered_rings() -> None:
    """TPU v5p 16x16x24: 16 ranks fill dim 0 (a ring with wraparound, 2 of 6 links);
    8 ranks form a line without wraparound (half the bandwidth); 256 use two dims."""
    v5p = load_system("tpu-v5p-pod", num_devices=6144)
    tier = v5p.tiers[0]
    per_dim = tier.bandwidth_bytes_per_s * tier.efficiency / 3
    size = 4 * GIB
    ring = collective(v5p, op="all_reduce", size_bytes=size, group_size=16)
    line = collective(v5p, op="all_reduce", size_bytes=size, group_size=8)
    plane = collective(v5p, op="all_reduce", size_bytes=size, group_size=256)
    assert ring.algorithm == "torus" and ring.tiers == ("ici-v5p",)
    assert ring.time_s == pytest.approx(2 * 15 / 16 * size / per_dim, rel=0.01)
    assert line.bus_bandwidth_bytes_per_s == pytest.approx(
        ring.bus_bandwidth_bytes_per_s / 2, rel=0.02
    )
    assert plane.bus_bandwidth_bytes_per_s > 1.5 * ring.bus_bandwidth_bytes_per_s
    assert plane.bus_bandwidth_bytes_per_s < 2 * per_dim * 1.01


def test_vectorised_equals_scalar_loop(h100: System) -> None:
    rng = np.random.default_rng(0)
    sizes = 10 ** rng.uniform(0, 10, 60)
    groups = 2 ** rng.integers(0, 8, 60)
    strides = 2 ** rng.integers(0, 3, 60)
    for op in COLLECTIVE_OPS:
        vec = collective_time_s(h100, op=op, size_bytes=sizes, group_size=groups, stride=strides)  # type: ignore[arg-type]
        loop = [
            collective(h100, op=op, size_bytes=float(s), group_size=int(g), stride=int(st)).time_s  # type: ignore[arg-type]
            for s, g, st in zip(sizes, groups, strides, strict=True)
        ]
        np.testing.assert_allclose(vec, loop, rtol=1e-12)
    grid = collective_time_s(
        h100, op="all_reduce", size_bytes=sizes[:, None], group_size=groups[None, :8]
    )
    assert grid.shape == (60, 8)


def test_no_op_and_bus_bandwidth_factors(h100: System) -> None:
    assert float(collective_time_s(h100, op="all_reduce", size_bytes=GIB, group_size=1)) == 0.0
    assert float(collective_time_s(h100, op="all_to_all", size_bytes=0, group_size=8)) == 0.0
    assert collective(h100, op="broadcast", size_bytes=GIB, group_size=1).algorithm == "none"
    assert float(bus_bandwidth_factor("all_reduce", 8)) == pytest.approx(1.75)
    assert float(bus_bandwidth_factor("all_gather", 8)) == pytest.approx(0.875)
    assert float(bus_bandwidth_factor("p2p", 8)) == 1.0
    r = collective(h100, op="reduce_scatter", size_bytes=GIB, group_size=8)
    assert r.bus_bandwidth_bytes_per_s == pytest.approx(r.algorithm_bandwidth_bytes_per_s * 7 / 8)


def test_bad_requests_raise_one_line(h100: System) -> None:
    with pytest.raises(CollectiveError, match="op: unknown collective"):
        collective_time_s(h100, op="allreduce", size_bytes=1, group_size=2)  # type: ignore[arg-type]
    with pytest.raises(CollectiveError, match="group_size: 2048 ranks"):
        collective_time_s(h100, op="all_reduce", size_bytes=1, group_size=[8, 2048])
    with pytest.raises(CollectiveError, match="stride: must be a positive integer"):
        collective_time_s(h100, op="all_reduce", size_bytes=1, group_size=2, stride=0)
    with pytest.raises(CollectiveError, match="size_bytes"):
        collective_time_s(h100, op="all_reduce", size_bytes=-1, group_size=2)


def test_cli_json_and_errors() -> None:
    runner = CliRunner()
    args = ["hw", "collective", "dgx-h100", "--op", "all-reduce", "--bytes", "67108864"]
    out = runner.invoke(app, [*args, "--group", "16", "--stride", "8", "--json"])
    assert out.exit_code == 0, out.output
    record = json.loads(out.stdout)
    assert {"time_s", "algorithm", "bus_bandwidth_bytes_per_s"} <= set(record)
    assert record["tiers"] == ["ib-ndr"] and record["time_s"] > 0
    table = runner.invoke(app, [*args, "--group", "8"])
    assert table.exit_code == 0 and "bus bandwidth" in table.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--op", "allreduce", "--bytes", "8", "--group", "8"], "--op: unknown collective"),
        (["--op", "p2p", "--bytes", "8", "--group", "16"], "--group: 16 ranks"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv: list[str], message: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nas.cli import main; main()",
            "hw",
            "collective",
            "h100-pcie-8",
            *argv,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def _toy_system(outer: Tier) -> System:
    """4-device switch nodes joined by ``outer``; built in code, not from a file."""
    inner = Tier(
        name="switch4",
        group_size=4,
        bandwidth_bytes_per_s=100e9,
        latency_s=2e-6,
        efficiency=0.8,
        topology="switch",
    )
    return System(
        name="toy",
        device=load_device("h100-sxm"),
        devices_per_node=4,
        tiers=(inner, outer),
        num_devices=outer.group_size,
        max_devices=outer.group_size,
    )


def test_torus_of_nodes_and_physical_ring() -> None:
    """Outer tiers given as a torus of nodes (4x4 nodes) or a ring of nodes."""
    torus = _toy_system(
        Tier(
            name="torus-of-nodes",
            group_size=64,
            bandwidth_bytes_per_s=40e9,
            latency_s=3e-6,
            efficiency=1.0,
            topology="torus3d",
            torus_dims=(4, 4, 4),  # in devices, as files give them: the node fills dim 0
        )
    )
    per_node = collective(torus, op="all_reduce", size_bytes=GIB, group_size=4, stride=4)
    assert per_node.algorithm == "torus" and per_node.tiers == ("torus-of-nodes",)
    # 4 nodes along dim 0 (with wraparound): bidirectional ring at B / 2 dims
    assert per_node.time_s == pytest.approx(2 * 3 / 4 * GIB / 20e9, rel=0.01)
    whole = collective(torus, op="all_reduce", size_bytes=GIB, group_size=64)
    assert whole.algorithm == "hierarchical"
    assert whole.tiers == ("switch4", "torus-of-nodes")
    ring = _toy_system(
        Tier(
            name="ring-of-nodes",
            group_size=32,
            bandwidth_bytes_per_s=40e9,
            latency_s=3e-6,
            efficiency=1.0,
            topology="ring",
        )
    )
    r = collective(ring, op="all_gather", size_bytes=GIB, group_size=8, stride=4)
    assert r.algorithm == "torus"
    assert r.time_s == pytest.approx(7 / 8 * GIB / 40e9, rel=0.01)
