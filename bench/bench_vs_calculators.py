"""The training cost model beside two simple calculators, on the published training rows, all
under leave-one-source-out (each publication predicted by parameters fitted without it).

1. **llm-analysis 0.2.2** (cli99/llm-analysis, Apache-2.0): the one-constant calculator that
   issue 14 measured this project against, run through its Python API (``LLMAnalysis`` and
   ``training``) with the row's model, plan (the plan ``nas validate`` uses: the source's
   values, the planner's where the source states none), precision, recomputation, ZeRO stage
   and attention kernel; its latency per iteration gives tokens/s per device. Its
   ``flops_efficiency`` once at 0.5 (its ``constant.py``: "~0.5 for Megatron-LM"; the
   setting issue 14 used) and once fitted leave-one-source-out on a 0.20-1.00 grid; every
   other setting at its default. GPUs it ships a config for use that config (A100 SXM
   40/80 GB, H100 SXM 80 GB); other GPUs get a config in its format from this project's
   profile (peaks, HBM, the NVLink tier's bandwidth, its intra-node latency of 8 us; the
   network field as its shipped files state it: the NIC's Gb/s figure). It cannot express
   TPUs (no torus), context parallelism, MLA or shared experts; those rows are left out of
   the common set. FP8 rows use its ``w8a8e16`` precision (8-bit peak).
2. **Constant MFU** (:func:`cost_models.validation.baselines.constant_mfu_tokens_per_s`):
   tokens/s = MFU x peak / model FLOPs per token, MFU fitted leave-one-source-out; every row.

Install llm-analysis without its dependencies (it pins huggingface-hub < 0.15 and
transformers, which it uses only to fetch model configs from the Hub, and this bench
passes configs): ``pip install --no-deps llm-analysis==0.2.2 'fire>=0.5,<0.6'``.

Run: ``python bench/bench_vs_calculators.py [--out bench/results]`` (under a minute).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cost_models.validation.baselines import (
    MFU_GRID,
    constant_mfu_tokens_per_s,
    held_out_errors_on_grid,
)
from cost_models.validation.holdout import ROW_BOUND, held_out_errors
from cost_models.validation.train import (
    PreparedRow,
    load_train_measurements,
    measured_tokens_per_s_per_device,
    prepare_row,
    validate_training_rows,
)

try:
    from llm_analysis.analysis import ActivationRecomputation, DSZeRO, LLMAnalysis
    from llm_analysis.config import (
        GPUConfig,
        ModelConfig,
        ParallelismConfig,
        get_dtype_config_by_name,
        get_gpu_config_by_name,
    )
    from llm_analysis.logger import logger as llm_analysis_logger
except ImportError:  # pragma: no cover - reported by main()
    LLMAnalysis = None

EFFICIENCY_GRID = np.round(np.arange(0.20, 1.0001, 0.01), 2)
FIXED_EFFICIENCY = 0.5
# this project's device profile -> llm-analysis's shipped GPU config
SHIPPED_GPUS = {
    "a100-80gb": "a100-sxm-80gb",
    "a100-40gb": "a100-sxm-40gb",
    "h100-sxm": "h100-sxm-80gb",
}
# llm-analysis's shipped A100/H100 files state 8 us minimum intra-node message latency
INTRA_NODE_LATENCY_S = 8e-6


@dataclass(frozen=True)
class Row:
    """One training throughput row: measured, this project's held-out error, the plan."""

    label: str
    publication: str
    measured: float
    ours_error: float
    prepared: PreparedRow


def training_rows() -> list[Row]:
    """Every training tokens/s row with this project's leave-one-source-out error."""
    shown = validate_training_rows(include_memory=False)
    errors = dict(zip([r["id"] for r in shown], held_out_errors(shown), strict=True))
    out = []
    for m in load_train_measurements():
        if m.label not in errors:
            continue
        prepared = prepare_row(m)
        measured = measured_tokens_per_s_per_device(m, prepared.arch)
        out.append(Row(m.label, m.source, measured, errors[m.label], prepared))
    return out


def why_not_expressible(p: PreparedRow) -> str | None:
    """Why llm-analysis cannot express the row, or None."""
    device = p.system.device
    if device.kind != "gpu":
        return f"{device.kind} {device.name}"
    if p.arch.mla is not None:
        return "MLA attention"
    if p.arch.moe is not None and (p.arch.moe.num_shared_experts or p.arch.moe.first_dense_layers):
        return "shared experts or dense first layers"
    if p.plan.cp > 1:
        return "context parallelism"
    return None


def gpu_config(p: PreparedRow) -> tuple[Any, str]:
    """llm-analysis's own config for the row's GPU, else one in its format from the profile."""
    device = p.system.device
    if device.name in SHIPPED_GPUS:
        return get_gpu_config_by_name(SHIPPED_GPUS[device.name]), "shipped"
    tiers = p.system.tiers
    sixteen = device.peak("bf16" if "bf16" in device.peak_flops_per_s else "fp16")
    eight = next((device.peak(d) for d in ("fp8", "int8") if d in device.peak_flops_per_s), None)
    network_gbit = tiers[1].bandwidth_bytes_per_s * 8 / 1e9 if len(tiers) > 1 else 200.0
    config = GPUConfig(
        name=device.name,
        mem_per_GPU_in_GB=device.memory_bytes / 1e9,
        hbm_bandwidth_in_GB_per_sec=device.memory_bandwidth_bytes_per_s / 1e9,
        intra_node_bandwidth_in_GB_per_sec=tiers[0].bandwidth_bytes_per_s / 1e9,
        intra_node_min_message_latency=INTRA_NODE_LATENCY_S,
        peak_fp16_TFLOPS=sixteen / 1e12,
        peak_i8_TFLOPS=None if eight is None else eight / 1e12,
        inter_node_bandwidth_in_GB_per_sec=network_gbit,
    )
    return config, "from profile"


def llm_analysis_tokens_per_s(p: PreparedRow, efficiencies: np.ndarray) -> np.ndarray:
    """llm-analysis's tokens/s per device for the row at each ``flops_efficiency``."""
    arch, plan, seq = p.arch, p.plan, p.workload.seq_len
    moe = arch.moe
    ffn = moe.d_expert if moe is not None else arch.d_ff
    model = ModelConfig(
        name=arch.name,
        num_layers=arch.num_layers,
        n_head=arch.num_heads,
        hidden_dim=arch.d_model,
        vocab_size=arch.vocab_size,
        max_seq_len=seq,
        num_key_value_heads=arch.num_kv_heads,
        ffn_embed_dim=ffn,
        expansion_ratio=ffn / arch.d_model,  # its check wants an integer ratio otherwise
        moe_num_experts=moe.num_experts if moe is not None else 1,
        moe_top_k=moe.top_k if moe is not None else 1,
    )
    parallel = ParallelismConfig(
        tp_size=plan.tp,
        pp_size=plan.pp,
        dp_size=plan.dp * plan.dp_replicate,
        ep_size=plan.ep,
        sp_size=plan.tp if plan.sequence_parallel else 1,
    )
    gpu, _ = gpu_config(p)
    dtype = get_dtype_config_by_name("w8a8e16" if p.workload.dtype == "fp8" else "w16a16e16")
    out = []
    for eff in efficiencies:
        analysis = LLMAnalysis(model, gpu, dtype, parallel, flops_efficiency=float(eff))
        summary = analysis.training(
            batch_size_per_gpu=plan.micro_batch,
            global_batch_size=plan.global_batch,
            seq_len=seq,
            activation_recomputation=ActivationRecomputation[plan.recompute.upper()],
            ds_zero=DSZeRO(plan.zero),
            flash_attn=p.options.attention_kernel != "unfused",
            mlp_gated_linear_units=arch.ffn_activation in ("swiglu", "geglu"),
        )
        step_s = float(summary["latency_per_iter"])
        out.append(plan.global_batch * seq / (step_s * p.system.num_devices))
    return np.array(out)


def _stats(errors: np.ndarray, pubs: list[str]) -> str:
    a = np.abs(errors)
    by_pub = [float(np.median(a[np.array(pubs) == q])) for q in sorted(set(pubs))]
    within = int(np.sum(a <= ROW_BOUND))
    return f"{np.median(a):7.1%} {np.median(by_pub):9.1%} {np.max(a):8.1%} {within:4d}/{len(a)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    if LLMAnalysis is None:
        print("llm-analysis is not installed: pip install --no-deps llm-analysis==0.2.2 "
              "'fire>=0.5,<0.6'", file=sys.stderr)  # fmt: skip
        return 2
    llm_analysis_logger.setLevel(logging.ERROR)
    rows = training_rows()
    pubs = [r.publication for r in rows]
    measured = np.array([r.measured for r in rows])
    ours = np.array([r.ours_error for r in rows])
    mfu = held_out_errors_on_grid(
        np.array([constant_mfu_tokens_per_s(r.prepared, MFU_GRID) for r in rows]), measured, pubs
    )
    common = [i for i, r in enumerate(rows) if why_not_expressible(r.prepared) is None]
    grid = np.concatenate([[FIXED_EFFICIENCY], EFFICIENCY_GRID])
    table = np.array([llm_analysis_tokens_per_s(rows[i].prepared, grid) for i in common])
    la_fixed = table[:, 0] / measured[common] - 1.0
    common_pubs = [pubs[i] for i in common]
    la_fit = held_out_errors_on_grid(table[:, 1:], measured[common], common_pubs)
    header = f"{'':46s} {'median':>7s} {'of pubs':>9s} {'worst':>8s} {'<=35%':>9s}"
    print(f"Rows both can express: {len(common)} of {len(rows)} "
          f"({len(set(common_pubs))} publications); leave-one-source-out |error|")  # fmt: skip
    print(header)
    print(f"{'this project (nas validate)':46s} {_stats(ours[common], common_pubs)}")
    print(f"{'llm-analysis 0.2.2, flops_efficiency 0.5':46s} {_stats(la_fixed, common_pubs)}")
    print(f"{'llm-analysis 0.2.2, flops_efficiency fitted':46s} {_stats(la_fit, common_pubs)}")
    print(f"{'constant MFU, fitted':46s} {_stats(mfu[common], common_pubs)}")
    print(f"\nEvery row: {len(rows)} ({len(set(pubs))} publications)")
    print(header)
    print(f"{'this project (nas validate)':46s} {_stats(ours, pubs)}")
    print(f"{'constant MFU, fitted':46s} {_stats(mfu, pubs)}")
    _write_csv(args.out / "calculators_side_by_side.csv", rows, ours, mfu, common, la_fixed, la_fit)
    return 0


def _write_csv(
    path: Path,
    rows: list[Row],
    ours: np.ndarray,
    mfu: np.ndarray,
    common: list[int],
    la_fixed: np.ndarray,
    la_fit: np.ndarray,
) -> None:
    fixed, fitted = dict(zip(common, la_fixed, strict=True)), dict(zip(common, la_fit, strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "publication", "measured_tokens_per_s_per_device", "this_project",
                    "llm_analysis_0.5", "llm_analysis_fitted", "llm_analysis_gpu_config",
                    "constant_mfu_fitted", "left_out_because"])  # fmt: skip
        for i, r in enumerate(rows):
            why = why_not_expressible(r.prepared)
            config = "" if why else gpu_config(r.prepared)[1]
            w.writerow([r.label, r.publication, f"{r.measured:.6g}", f"{ours[i]:+.4f}",
                        f"{fixed[i]:+.4f}" if i in fixed else "",
                        f"{fitted[i]:+.4f}" if i in fitted else "", config,
                        f"{mfu[i]:+.4f}", why or ""])  # fmt: skip
    print(f"\nper row: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
