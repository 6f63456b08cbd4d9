"""Issue 14, item 6: measure this machine's accelerator and compare with ``nas estimate``.

1. Profiles the device (``nas hw profile``'s measurement, written next to the results).
2. Times real bf16 training steps of three decoder shapes (GPT-2 124M; Llama 3.2 1B and 3B
   shapes, from their Hugging Face ``config.json``) with the project's PyTorch decoder: AdamW
   under bf16 autocast, one device, no recompute; tokens/s and peak allocated memory.
3. Times decoding of Llama 3 8B in bf16 at batch 1, 8 and 64 (512-token prompts, 64 generated
   tokens, greedy, KV cache): TTFT and time per output token.
4. Estimates each with the cost model on the measured profile and, where the GPU has a
   shipped profile, on that one too: training under the ``torchtitan`` stack (eager PyTorch,
   SDPA's FlashAttention-2) with zero 0, decode under the ``pytorch`` serving stack with
   ``host_launch_s`` set to the profile's measured per-op dispatch time (eager PyTorch issues
   every kernel from Python; nothing is fitted).

Writes ``<out>/own-rows-<device>-<date>.csv`` and the profile YAML, and prints the table.
``--quick`` (and any run without CUDA) uses tiny shapes: it checks the script, its figures
say nothing about a GPU. Run: ``python bench/bench_own_gpu.py [--quick] [--out bench/results]``
(a few minutes expected on one H100; not yet run on a GPU).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cost_models.estimate import estimate
from cost_models.plan import InferenceWorkload, ParallelPlan, TrainWorkload
from cost_models.stacks import resolve_serve, resolve_train
from cost_models.validation.inference import single_device_system
from hw_profiles.profiler import profile_to_yaml, run_profile
from hw_profiles.types import System
from nas.evaluators.workload_timer import pick_device, time_decode, time_training
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model

# Hugging Face meta-llama/Llama-3.2-1B and -3B config.json: hidden_size, num_hidden_layers,
# num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, tie_word_embeddings
LLAMA32_1B = dict(num_layers=16, d_model=2048, num_heads=32, num_kv_heads=8, d_ff=8192)
LLAMA32_3B = dict(num_layers=28, d_model=3072, num_heads=24, num_kv_heads=8, d_ff=8192)
LLAMA32_COMMON = dict(vocab_size=128256, ffn_activation="swiglu", norm="rmsnorm",
                      tie_embeddings=True)  # fmt: skip
DECODE_BATCHES = (1, 8, 64)
GIB = 2.0**30


@dataclass(frozen=True)
class TrainCase:
    arch: Architecture
    batch: int
    seq_len: int


@dataclass(frozen=True)
class DecodeCase:
    arch: Architecture
    batch: int
    prompt_len: int
    gen_len: int


def _llama32(name: str, dims: dict[str, int]) -> Architecture:
    return Architecture(name=name, **dims, **LLAMA32_COMMON)  # type: ignore[arg-type]


def _tiny(name: str, layers: int) -> Architecture:
    return Architecture(name=name, num_layers=layers, d_model=128, num_heads=4, num_kv_heads=2,
                        d_ff=256, vocab_size=1024, ffn_activation="swiglu", norm="rmsnorm")  # fmt: skip


def cases(gpu: bool) -> tuple[list[TrainCase], list[DecodeCase]]:
    """The GPU shapes of the module docstring, or tiny ones for a check on the CPU."""
    if not gpu:
        train = [TrainCase(_tiny("tiny-2l", 2), 2, 64), TrainCase(_tiny("tiny-4l", 4), 2, 64)]
        return train, [DecodeCase(_tiny("tiny-2l", 2), b, 16, 4) for b in DECODE_BATCHES]
    train = [
        TrainCase(load_model("gpt2-124m"), 8, 1024),
        TrainCase(_llama32("llama3.2-1b", LLAMA32_1B), 4, 2048),
        TrainCase(_llama32("llama3.2-3b", LLAMA32_3B), 1, 2048),
    ]
    return train, [DecodeCase(load_model("llama3-8b"), b, 512, 64) for b in DECODE_BATCHES]


def shipped_device(cuda_name: str) -> str | None:
    """The shipped device profile of a CUDA device name, if there is one."""
    name = cuda_name.upper()
    for key, device in (("H100 PCIE", "h100-pcie"), ("H100", "h100-sxm"), ("H200", "h200"),
                        ("H800", "h800"), ("A100-SXM4-40GB", "a100-40gb"), ("A100", "a100-80gb"),
                        ("GB200", "gb200"), ("B200", "b200"), ("L40S", "l40s"), ("H20", "h20")):  # fmt: skip
        if key in name:
            return device
    return None


def _train_estimate(case: TrainCase, system: System) -> dict[str, Any]:
    plan = ParallelPlan(micro_batch=case.batch, global_batch=case.batch, recompute="none")
    options = resolve_train("torchtitan")[1]
    return estimate(case.arch, system, TrainWorkload(seq_len=case.seq_len, dtype="bf16"),
                    plan=plan, options=options)  # fmt: skip


def _decode_estimate(case: DecodeCase, system: System, launch_s: float) -> dict[str, Any]:
    workload = InferenceWorkload(batch=case.batch, prompt_len=case.prompt_len,
                                 gen_len=case.gen_len)  # fmt: skip
    serve = resolve_serve("pytorch", {"host_launch_s": min(launch_s, 5e-5)})[1]
    return estimate(case.arch, system, workload, mode="decode", serve=serve)


def _row(
    kind: str, label: str, metric: str, measured: float, estimates: dict[str, float]
) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": kind, "case": label, "metric": metric, "measured": measured}
    for profile, value in estimates.items():
        row[f"estimate_{profile}"] = value
        row[f"error_{profile}"] = value / measured - 1.0 if measured else float("nan")
    return row


def measure(
    device: torch.device, systems: dict[str, System], launch_s: float
) -> list[dict[str, Any]]:
    """Every case timed and estimated on every system (``profiled``, ``shipped``);
    ``launch_s`` is the measured host time per eager op."""
    train, decode = cases(device.type == "cuda")
    rows: list[dict[str, Any]] = []
    for c in train:
        label = f"{c.arch.name} b{c.batch} s{c.seq_len}"
        try:
            t = time_training(c.arch, batch=c.batch, seq_len=c.seq_len, device=device)
        except torch.OutOfMemoryError:  # the run is the measurement: report it, go on
            torch.cuda.empty_cache()
            print(f"train {label}: out of memory on this device, no row")
            continue
        est = {k: _train_estimate(c, s) for k, s in systems.items()}
        rows.append(_row("train", label, "tokens_per_s", t.tokens_per_s,
                         {k: e["tokens_per_s"] for k, e in est.items()}))  # fmt: skip
        if device.type == "cuda":
            rows.append(_row("train", label, "peak_allocated_gib", t.peak_allocated_bytes / GIB,
                             {k: e["memory_per_device_bytes"] / GIB for k, e in est.items()}))  # fmt: skip
    for dc in decode:
        d = time_decode(dc.arch, batch=dc.batch, prompt_len=dc.prompt_len, gen_len=dc.gen_len,
                        device=device)  # fmt: skip
        est = {k: _decode_estimate(dc, s, launch_s) for k, s in systems.items()}
        label = f"{dc.arch.name} b{dc.batch} in{dc.prompt_len} out{dc.gen_len}"
        for metric, value in (("ttft_s", d.ttft_s), ("tpot_s", d.tpot_s)):
            rows.append(
                _row("decode", label, metric, value, {k: e[metric] for k, e in est.items()})
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and a quick profile")
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    device = pick_device(args.device)
    profile = run_profile(quick=args.quick or device.type == "cpu")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    args.out.mkdir(parents=True, exist_ok=True)
    profile_path = args.out / f"own-profile-{profile.name}-{stamp}.yaml"
    profile_path.write_text(profile_to_yaml(profile), encoding="utf-8")
    systems = {"profiled": single_device_system(str(profile_path))}
    shipped = shipped_device(profile.device_name) if device.type == "cuda" else None
    if shipped:
        systems["shipped"] = single_device_system(shipped)
    rows = measure(device, systems, profile.launch_s)
    meta = {"device": profile.device_name, "torch": torch.__version__, "date": profile.date,
            "shipped_profile": shipped or ""}  # fmt: skip
    out = args.out / f"own-rows-{profile.name}-{stamp}.csv"
    fields = list(dict.fromkeys(k for r in rows for k in r)) + list(meta)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({**r, **meta} for r in rows)
    print(f"{profile.device_name}, torch {torch.__version__}, shipped profile: {shipped or 'none'}")
    for r in rows:
        errs = "  ".join(f"{k[6:]} {r[k]:+.1%}" for k in r if k.startswith("error_"))
        print(f"{r['kind']:6} {r['case']:34} {r['metric']:18} {r['measured']:12.4g}  {errs}")
    print(f"wrote {out} and {profile_path}")


if __name__ == "__main__":
    main()
