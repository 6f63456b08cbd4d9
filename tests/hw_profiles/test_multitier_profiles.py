"""Systems with more than two tiers and the unit of a device: TPU v4 pods over DCN, the
Ascend 910C counted in dies on CloudMatrix384, the oversubscribed aggregation layer of Meta's
24K-GPU RoCE cluster. The figures checked are those the profiles cite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from hw_profiles import ProfileError, load_device, load_system
from hw_profiles.loader import DEVICES_DIR, SYSTEMS_DIR


def test_tpu_v4_is_a_multi_pod_system() -> None:
    """PaLM (arXiv 2204.02311 section 4): 6,144 chips, two pods over DCN."""
    system = load_system("tpu-v4-pod", 6144)
    ici, dcn = system.tiers
    assert (ici.group_size, dcn.group_size) == (4096, 8 * 4096)
    assert dcn.bandwidth_bytes_per_s == pytest.approx(6.25e9)  # JAX scaling book, per chip
    assert ici.bandwidth_bytes_per_s / dcn.bandwidth_bytes_per_s == pytest.approx(43.2)
    assert system.scale_up_devices == 4096  # the DCN is a network, not the scale-up fabric


def test_tpu_multi_pod_systems_agree() -> None:
    """Every TPU system joins its ICI domains over a `dcn` tier."""
    for name in ("tpu-v4-pod", "tpu-v5p-pod", "tpu-v5e-pod"):
        tiers = load_system(name).tiers
        assert [t.name for t in tiers][-1] == "dcn" and tiers[-1].topology == "switch"


def test_cloudmatrix_counts_dies() -> None:
    """CloudMatrix384 (arXiv 2506.12708): 384 packages = 768 dies, 16 dies per node."""
    system = load_system("cloudmatrix-384", 768)
    assert system.device.name == "ascend-910c-die"
    d2d, ub, rdma = system.tiers
    assert d2d.group_size == 2 and ub.group_size == 2 * 384 and ub.scale_up
    assert system.devices_per_node == 8 * 2
    assert system.scale_up_devices == 768  # the whole UB domain, not the die pair
    assert load_system("cloudmatrix-384", 320).num_devices == 320  # EP320 decode
    assert d2d.bandwidth_bytes_per_s == pytest.approx(270e9)
    # per die, half of the per-package figures the paper gives: UB 392 GB/s, RDMA 400 Gb/s
    assert 2 * ub.bandwidth_bytes_per_s == pytest.approx(392e9)
    assert 2 * rdma.bandwidth_bytes_per_s == pytest.approx(400e9 / 8)


def test_die_is_half_a_package() -> None:
    die, package = load_device("ascend-910c-die"), load_device("ascend-910c")
    assert 2 * die.peak("bf16") == pytest.approx(package.peak("bf16"))
    assert 2 * die.memory_bytes == pytest.approx(package.memory_bytes)
    assert 2 * die.memory_bandwidth_bytes_per_s == pytest.approx(
        package.memory_bandwidth_bytes_per_s
    )


def test_units_are_documented() -> None:
    """The files say which unit a device is, in the header and in `notes`."""
    die = yaml.safe_load((DEVICES_DIR / "ascend-910c-die.yaml").read_text())
    package = yaml.safe_load((DEVICES_DIR / "ascend-910c.yaml").read_text())
    assert "one die" in die["notes"] and "one package" in package["notes"]
    assert "DIES" in (SYSTEMS_DIR / "cloudmatrix-384.yaml").read_text().splitlines()[0]


def test_grand_teton_has_the_llama3_aggregation_layer() -> None:
    """Llama 3 (arXiv 2407.21783 section 3.3.1): pods of 3,072 GPUs at full bisection,
    eight pods joined at 1:7 oversubscription."""
    nvlink, pod, agg = load_system("grand-teton-h100", 16384).tiers
    assert (nvlink.group_size, pod.group_size, agg.group_size) == (8, 3072, 8 * 3072)
    assert agg.bandwidth_bytes_per_s == pytest.approx(pod.bandwidth_bytes_per_s / 7, rel=1e-6)
    assert load_system("grand-teton-h100").scale_up_devices == 8


def _grand_teton_with(tmp_path: Path, index: int, value: object) -> Path:
    data = yaml.safe_load((SYSTEMS_DIR / "grand-teton-h100.yaml").read_text())
    data["tiers"][index]["scale_up"] = value
    data["device"] = str(DEVICES_DIR / "h100-sxm-96gb-500w.yaml")
    path = tmp_path / "gt.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_scale_up_tiers_come_first(tmp_path: Path) -> None:
    ok = load_system(str(_grand_teton_with(tmp_path, 1, True)))
    assert ok.scale_up_devices == 3072
    with pytest.raises(ProfileError, match=r"tiers\[2\]\.scale_up: true after tiers\[1\]"):
        load_system(str(_grand_teton_with(tmp_path, 2, True)))
    with pytest.raises(ProfileError, match=r"tiers\[1\]: scale_up: expected true or false"):
        load_system(str(_grand_teton_with(tmp_path, 1, "yes")))


def test_grand_teton_80gb_is_the_llama3_host_on_the_same_network() -> None:
    """Llama 3 (arXiv 2407.21783 section 3.3.1): 700 W H100 with 80 GB HBM3 on Grand Teton,
    the same RoCE tiers as the torchtitan profile (whose H100 is the 96 GB / 500 W part)."""
    meta = load_system("grand-teton-h100-80gb", 16384)
    titan = load_system("grand-teton-h100", 16384)
    assert meta.device.name == "h100-sxm" and titan.device.name == "h100-sxm-96gb-500w"
    assert meta.device.memory_bytes == pytest.approx(80e9)
    # the same tiers; only the wording of their sources differs
    assert [replace(t, sources={}) for t in meta.tiers] == [
        replace(t, sources={}) for t in titan.tiers
    ]
    assert meta.scale_up_devices == 8
