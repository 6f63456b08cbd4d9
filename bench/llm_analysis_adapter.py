"""This project's rows as llm-analysis 0.2.2 inputs (cli99/llm-analysis, Apache-2.0), run through
its Python API (``LLMAnalysis.training`` and ``LLMAnalysis.inference``); used by
``bench/bench_vs_calculators.py``.

GPUs llm-analysis ships a config for use that config (A100 SXM 40/80 GB, H100 SXM 80 GB); other
GPUs get a config in its format from this project's profile: peaks, HBM, the first tier's
bandwidth, the 8 us minimum intra-node message latency its shipped A100/H100 files state, and
the network field as those files state it (the NIC's Gb/s figure). It has no torus (TPUs), no
context parallelism, no MLA and no shared experts: :func:`why_not_expressible` says so.
8-bit weights run as its ``w8a8e16`` (the 8-bit peak), 4-bit as ``w4a16e16``.

Install it without its dependencies (it pins huggingface-hub < 0.15 and transformers, which it
uses only to fetch model configs from the Hub; configs are passed here):
``pip install --no-deps llm-analysis==0.2.2 && pip install 'fire>=0.5,<0.6'``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from llm_analysis.analysis import ActivationRecomputation, DSZeRO, LLMAnalysis
from llm_analysis.config import (
    GPUConfig,
    ModelConfig,
    ParallelismConfig,
    get_dtype_config_by_name,
    get_gpu_config_by_name,
)
from llm_analysis.logger import logger

from cost_models.validation.train import PreparedRow
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.counts import dtype_bytes

logger.setLevel(logging.ERROR)

# this project's device profile -> llm-analysis's shipped GPU config
SHIPPED_GPUS = {
    "a100-80gb": "a100-sxm-80gb",
    "a100-40gb": "a100-sxm-40gb",
    "h100-sxm": "h100-sxm-80gb",
}
INTRA_NODE_LATENCY_S = 8e-6
DTYPES = {"fp8": "w8a8e16", "int8": "w8a8e16", "int4": "w4a16e16"}


def why_not_expressible(arch: Architecture, system: System, *, cp: int = 1) -> str | None:
    """Why llm-analysis cannot express the case, or None."""
    device = system.device
    if device.kind != "gpu":
        return f"{device.kind} {device.name}"
    if arch.mla is not None:
        return "MLA attention"
    if arch.moe is not None and (arch.moe.num_shared_experts or arch.moe.first_dense_layers):
        return "shared experts or dense first layers"
    if cp > 1:
        return "context parallelism"
    return None


def gpu_config(system: System) -> tuple[Any, str]:
    """llm-analysis's own config for the GPU, else one in its format from the profile."""
    device = system.device
    if device.name in SHIPPED_GPUS:
        return get_gpu_config_by_name(SHIPPED_GPUS[device.name]), "shipped"
    tiers = system.tiers
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


def model_config(arch: Architecture, *, max_seq_len: int) -> Any:
    moe = arch.moe
    ffn = moe.d_expert if moe is not None else arch.d_ff
    return ModelConfig(
        name=arch.name,
        num_layers=arch.num_layers,
        n_head=arch.num_heads,
        hidden_dim=arch.d_model,
        vocab_size=arch.vocab_size,
        max_seq_len=max_seq_len,
        num_key_value_heads=arch.num_kv_heads,
        ffn_embed_dim=ffn,
        expansion_ratio=ffn / arch.d_model,  # its check wants an integer ratio otherwise
        moe_num_experts=moe.num_experts if moe is not None else 1,
        moe_top_k=moe.top_k if moe is not None else 1,
    )


def training_tokens_per_s(p: PreparedRow, efficiencies: np.ndarray) -> np.ndarray:
    """Tokens/s per device for a training row at each ``flops_efficiency``."""
    arch, plan, seq = p.arch, p.plan, p.workload.seq_len
    model = model_config(arch, max_seq_len=seq)
    parallel = ParallelismConfig(
        tp_size=plan.tp,
        pp_size=plan.pp,
        dp_size=plan.dp * plan.dp_replicate,
        ep_size=plan.ep,
        sp_size=plan.tp if plan.sequence_parallel else 1,
    )
    gpu, _ = gpu_config(p.system)
    dtype = get_dtype_config_by_name(DTYPES.get(p.workload.dtype, "w16a16e16"))
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


def inference_latency_s(
    arch: Architecture,
    system: System,
    *,
    tp: int,
    batch_per_replica: int,
    in_len: int,
    out_len: int,
    weight_dtype: str,
    kv_dtype: str,
    metric: str,
    pairs: list[tuple[float, float]],
) -> np.ndarray:
    """``metric`` (ttft, ttft_loaded, tpot or e2e, seconds) at each (``flops_efficiency``,
    ``hbm_memory_efficiency``). TTFT is its prefill latency (a loaded TTFT: the arriving
    request's, batch 1), TPOT its decode latency, end-to-end the prefill plus ``out_len - 1``
    decode steps (the first token comes with the prefill)."""
    model = model_config(arch, max_seq_len=in_len + max(out_len, 1))
    gpu, _ = gpu_config(system)
    dtype = get_dtype_config_by_name(DTYPES.get(weight_dtype, "w16a16e16"))
    batch = 1 if metric == "ttft_loaded" else batch_per_replica
    out = []
    for flops_eff, hbm_eff in pairs:
        analysis = LLMAnalysis(model, gpu, dtype, ParallelismConfig(tp_size=tp),
                               flops_efficiency=flops_eff, hbm_memory_efficiency=hbm_eff)  # fmt: skip
        s = analysis.inference(batch_size_per_gpu=batch, seq_len=in_len,
                               num_tokens_to_generate=max(out_len, 1),
                               kv_cache_dtype_bytes=int(dtype_bytes(kv_dtype)))  # fmt: skip
        prefill, decode = float(s["prefill_latency"]), float(s["decode_latency"])
        value = {"ttft": prefill, "ttft_loaded": prefill, "tpot": decode,
                 "e2e": prefill + (out_len - 1) * decode}[metric]  # fmt: skip
        out.append(value)
    return np.array(out)
