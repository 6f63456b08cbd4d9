"""The workload timer: its KV-cached decode computes what the full forward computes, and its
timings are real measurements of the shapes asked for (CPU, tiny shapes)."""

from __future__ import annotations

import pytest
import torch

from nas.evaluators.proxy_model import Decoder
from nas.evaluators.workload_timer import (
    KvCache,
    cached_forward,
    pick_device,
    time_decode,
    time_training,
)
from search_spaces.architecture import Architecture

CPU = torch.device("cpu")


def _arch(**over: object) -> Architecture:
    base: dict[str, object] = dict(
        name="tiny", num_layers=2, d_model=64, num_heads=4, num_kv_heads=2, d_ff=128,
        vocab_size=97, ffn_activation="swiglu", norm="rmsnorm",
    )  # fmt: skip
    base.update(over)
    return Architecture(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arch",
    [
        _arch(),
        _arch(num_kv_heads=4, parallel_block=True),
        _arch(learned_positions=32, norm="layernorm", ffn_activation="gelu", bias=True),
    ],
    ids=["gqa-rope", "parallel-block", "learned-positions"],
)
def test_cached_decode_matches_the_full_forward(arch: Architecture) -> None:
    torch.manual_seed(0)
    model = Decoder(arch, max_seq_len=32).eval()
    tokens = torch.randint(0, arch.vocab_size, (3, 12))
    cache = KvCache.empty(arch, batch=3, max_len=32, device=CPU, dtype=torch.float32)
    got = [cached_forward(model, tokens[:, :8], cache)]
    for i in range(8, 12):  # then one token at a time
        got.append(cached_forward(model, tokens[:, i : i + 1], cache))
    with torch.no_grad():
        full = model(tokens)
    want = [full[:, 7]] + [full[:, i] for i in range(8, 12)]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    assert cache.length == 12


def test_training_timing_counts_the_tokens_of_each_step() -> None:
    t = time_training(_arch(), batch=2, seq_len=16, device=CPU, steps=3, warmup=1)
    assert t.steps == 3 and t.step_s > 0
    assert t.tokens_per_s == pytest.approx(2 * 16 / t.step_s)
    assert t.peak_allocated_bytes == 0.0  # only CUDA reports a peak


def test_decode_timing_reports_prefill_and_per_token_times() -> None:
    t = time_decode(_arch(), batch=2, prompt_len=8, gen_len=4, device=CPU, repeats=1)
    assert t.ttft_s > 0 and t.tpot_s > 0
    with pytest.raises(ValueError, match="time_decode: dense decoders only"):
        from search_spaces.architecture import MoEConfig

        moe = _arch(moe=MoEConfig(num_experts=4, top_k=2, d_expert=32))
        time_decode(moe, batch=1, prompt_len=4, gen_len=2, device=CPU)


def test_device_names_are_checked() -> None:
    assert pick_device("cpu") == CPU
    with pytest.raises(ValueError, match="device: must be one of auto, cuda, cpu"):
        pick_device("tpu")


def _bench_module() -> object:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "bench" / "bench_own_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_own_gpu", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_gpu_names_map_to_their_shipped_profiles() -> None:
    shipped = _bench_module().shipped_device  # type: ignore[attr-defined]
    assert shipped("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert shipped("NVIDIA H100 PCIe") == "h100-pcie"
    assert shipped("NVIDIA H200") == "h200"
    assert shipped("NVIDIA A100-SXM4-40GB") == "a100-40gb"
    assert shipped("NVIDIA A100-SXM4-80GB") == "a100-80gb"
    assert shipped("NVIDIA GeForce RTX 4090") is None


def test_the_own_rows_bench_measures_and_estimates_every_case(tmp_path: object) -> None:
    import csv
    import subprocess
    import sys
    from pathlib import Path

    out = Path(str(tmp_path))
    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [sys.executable, "bench/bench_own_gpu.py", "--quick", "--device", "cpu", "--out", str(out)],
        cwd=root, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (table,) = out.glob("own-rows-*.csv")
    assert len(list(out.glob("own-profile-*.yaml"))) == 1
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    metrics = [(r["kind"], r["metric"]) for r in rows]
    assert metrics.count(("train", "tokens_per_s")) == 2
    assert metrics.count(("decode", "ttft_s")) == metrics.count(("decode", "tpot_s")) == 3
    for r in rows:
        assert float(r["measured"]) > 0 and float(r["estimate_profiled"]) > 0
        assert r["torch"] == torch.__version__ and r["shipped_profile"] == ""
