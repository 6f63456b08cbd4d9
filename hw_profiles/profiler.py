"""Measure the machine this runs on with torch and write a device profile.

GEMM FLOP/s over several square sizes and dtypes (CPU: fp32, bf16; CUDA: bf16, fp16, tf32,
fp32), fused attention (``scaled_dot_product_attention``) and memory bandwidth from large
tensor copies. Each point is the median of several timed repeats after warm-up. The
profile's peak for a dtype is the best measured rate, its GEMM efficiency curve is the
measured rate by size over that peak, and memory bandwidth is the median copy rate (so its
efficiency is 1 by construction). Timing: wall clock around the op, with
``torch.cuda.synchronize`` on CUDA.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True, kw_only=True)
class ProfilePlan:
    """What to measure: matrix sizes, dtypes, repeats, copy size."""

    gemm_sizes: tuple[int, ...]
    dtypes: tuple[str, ...]
    warmup: int
    repeats: int
    copy_bytes: int
    attention_seq: int

    def __post_init__(self) -> None:
        if not self.gemm_sizes or min(self.gemm_sizes) <= 0 or self.repeats <= 0:
            raise ValueError("profile plan: sizes and repeats must be positive")


@dataclass(frozen=True, kw_only=True)
class ProfileResult:
    """Measurements of one device (SI units)."""

    name: str
    vendor: str
    kind: str  # "cpu" or "gpu"
    device_name: str
    date: str
    gemm_flops_per_s: dict[str, dict[int, float]]  # dtype -> size n -> FLOP/s (n x n x n)
    attention_flops_per_s: float
    copy_bytes_per_s: float
    launch_s: float
    memory_bytes: float
    onchip_bytes: float
    power_w: float
    notes: dict[str, Any] = field(default_factory=dict)


def plan_for(*, cuda: bool, quick: bool) -> ProfilePlan:
    """Sizes and repeats: ``quick`` keeps a CPU run near 10 s on two cores."""
    if cuda:
        return ProfilePlan(
            gemm_sizes=(512, 2048, 8192) if quick else (256, 512, 1024, 2048, 4096, 8192, 16384),
            dtypes=("bf16", "fp16", "tf32", "fp32"),
            warmup=3,
            repeats=5 if quick else 20,
            copy_bytes=(1 if quick else 4) * 2**30,
            attention_seq=4096,
        )
    return ProfilePlan(
        gemm_sizes=(128, 256, 512, 1024) if quick else (128, 256, 512, 1024, 2048),
        dtypes=("fp32", "bf16"),
        warmup=1,
        repeats=5 if quick else 9,
        copy_bytes=(64 if quick else 256) * 2**20,
        attention_seq=512 if quick else 1024,
    )


class _Timer:
    """Median seconds per call. Each timed repeat runs an op enough times to last
    ``min_repeat_s`` (as ``timeit.autorange`` does), and :meth:`interleaved` times several
    ops round-robin, so load from other processes spreads over all sizes instead of
    distorting one."""

    def __init__(self, sync: Callable[[], None], *, min_repeat_s: float) -> None:
        self.sync = sync
        self.min_repeat_s = min_repeat_s

    def _once(self, fn: Callable[[], object], inner: int) -> float:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        self.sync()
        return (time.perf_counter() - start) / inner

    def interleaved(
        self, fns: list[Callable[[], object]], warmup: int, repeats: int
    ) -> list[float]:
        inners = []
        for fn in fns:
            for _ in range(warmup):
                fn()
            self.sync()
            once = max(self._once(fn, 1), 1e-9)
            inners.append(max(1, min(1000, math.ceil(self.min_repeat_s / once))))
        times: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                times[i].append(self._once(fn, inners[i]))
        return [statistics.median(t) for t in times]

    def __call__(self, fn: Callable[[], object], warmup: int, repeats: int) -> float:
        return self.interleaved([fn], warmup, repeats)[0]


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}.get(
        dtype, torch.float16
    )


def _bind(fn: Callable[..., object], *args: object) -> Callable[[], object]:
    return lambda: fn(*args)


def _measure_gemm(
    torch: Any, dev: str, plan: ProfilePlan, timer: _Timer
) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for dtype in plan.dtypes:
        if dev == "cuda":  # tf32 is fp32 storage with TF32 tensor-core math
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        tdtype = _torch_dtype(torch, dtype)
        pairs = [
            (
                torch.randn(n, n, device=dev, dtype=tdtype),
                torch.randn(n, n, device=dev, dtype=tdtype),
            )
            for n in plan.gemm_sizes
        ]
        fns = [_bind(torch.matmul, a, b) for a, b in pairs]
        seconds = timer.interleaved(fns, plan.warmup, plan.repeats)
        # 2 n^3 FLOPs per n x n x n GEMM (one multiply and one add per term)
        out[dtype] = {n: 2.0 * n**3 / t for n, t in zip(plan.gemm_sizes, seconds, strict=True)}
        del pairs, fns
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    return out


def _measure_attention(torch: Any, dev: str, plan: ProfilePlan, timer: _Timer) -> float:
    heads, head_dim, seq = 8, 64, plan.attention_seq
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    q, k, v = (torch.randn(1, heads, seq, head_dim, device=dev, dtype=dtype) for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    seconds = timer(lambda: sdpa(q, k, v), plan.warmup, plan.repeats)
    return 4.0 * heads * seq * seq * head_dim / seconds  # QK^T and PV: 2 x 2 s^2 d per head


def _measure_copy(torch: Any, dev: str, plan: ProfilePlan, timer: _Timer) -> float:
    src = torch.empty(plan.copy_bytes // 4, device=dev, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    seconds = timer(lambda: dst.copy_(src), plan.warmup, plan.repeats)
    return 2.0 * plan.copy_bytes / seconds  # each byte is read once and written once


def _measure_launch(torch: Any, dev: str, timer: _Timer) -> float:
    x = torch.zeros(1, device=dev)
    return float(timer(lambda: x.add_(1.0), 10, 50))


def _cpu_facts() -> tuple[str, str, float, float]:
    model, vendor = platform.processor() or "cpu", "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "vendor_id":
                    vendor = value.strip()
    except OSError:
        pass
    memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    onchip = 0.0
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size", encoding="utf-8") as fh:
            text = fh.read().strip().upper()
        onchip = float(text.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}[text[-1]]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    return model, vendor, memory, onchip


def _gpu_facts(torch: Any) -> tuple[str, str, float, float, float]:
    props = torch.cuda.get_device_properties(0)
    vendor = "AMD" if getattr(torch.version, "hip", None) else "NVIDIA"
    power = 0.0
    try:  # enforced board power limit via NVML, when available
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        power = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
    except Exception:  # NVML missing or not permitted: power stays unknown (0)
        power = 0.0
    onchip = float(getattr(props, "L2_cache_size", 0) or 0)
    return props.name, vendor, float(props.total_memory), onchip, power


def _load_average() -> float:
    """1-minute load average (other processes skew CPU timings); -1 where unavailable."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return -1.0


def _slug(text: str) -> str:
    chars = [c.lower() if c.isalnum() else "-" for c in text]
    return "-".join(part for part in "".join(chars).split("-") if part)[:48] or "device"


def run_profile(
    *, quick: bool = False, name: str | None = None, threads: int | None = None
) -> ProfileResult:
    """Measure this machine (CUDA device 0 if present, else the CPU with ``threads`` torch
    threads, default torch's own choice)."""
    import torch

    if threads is not None:
        cores = os.cpu_count() or 1
        if not 1 <= threads <= 4 * cores:  # thousands of threads crash or hang torch
            raise ValueError(f"--threads: must be in [1, {4 * cores}] (4 x the {cores} CPUs), got {threads}")  # fmt: skip
        torch.set_num_threads(threads)

    cuda = bool(torch.cuda.is_available())
    dev = "cuda" if cuda else "cpu"
    plan = plan_for(cuda=cuda, quick=quick)
    timer = _Timer(torch.cuda.synchronize if cuda else (lambda: None), min_repeat_s=0.002)
    if cuda:
        device_name, vendor, memory, onchip, power = _gpu_facts(torch)
    else:
        device_name, vendor, memory, onchip = _cpu_facts()
        power = 0.0
    load_before = _load_average()
    with torch.no_grad():
        gemm = _measure_gemm(torch, dev, plan, timer)
        attention = _measure_attention(torch, dev, plan, timer)
        copy = _measure_copy(torch, dev, plan, timer)
        launch = _measure_launch(torch, dev, timer)
    return ProfileResult(
        name=name or f"local-{dev}-{_slug(device_name)}",
        vendor=vendor,
        kind="gpu" if cuda else "cpu",
        device_name=device_name,
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        gemm_flops_per_s=gemm,
        attention_flops_per_s=attention,
        copy_bytes_per_s=copy,
        launch_s=launch,
        memory_bytes=memory,
        onchip_bytes=onchip,
        power_w=power,
        notes={
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "quick": quick,
            "repeats": plan.repeats,
            "load": f"{load_before:.2f} -> {_load_average():.2f}",
        },
    )


def _sig(value: float) -> float:
    """Six significant digits: enough for a measurement, short in the file."""
    return float(f"{value:.6g}")


def profile_to_mapping(result: ProfileResult) -> dict[str, Any]:
    """The device-file mapping (human units) for ``result``; loads with ``load_device``."""
    peaks = {dtype: max(rates.values()) for dtype, rates in result.gemm_flops_per_s.items()}
    curve_dtype = "bf16" if "bf16" in peaks else next(iter(peaks))
    rates = result.gemm_flops_per_s[curve_dtype]
    sizes = sorted(rates)
    fractions = [max(1e-4, round(rates[n] / peaks[curve_dtype], 4)) for n in sizes]
    basis = f"measured by nas hw profile on {result.date}, {result.device_name}"
    mapping: dict[str, Any] = {
        "name": result.name,
        "vendor": result.vendor,
        "kind": result.kind,
        "peak_tflops": {d: _sig(p / 1e12) for d, p in peaks.items()},
        "memory_gb": round(result.memory_bytes / 1e9, 3),
        "memory_tb_per_s": _sig(result.copy_bytes_per_s / 1e12),
        "onchip_mb": round(result.onchip_bytes / 1e6, 3),
        "gemm_efficiency": fractions[-1],
        "gemm_efficiency_curve": {
            "gflop": [_sig(2.0 * n**3 / 1e9) for n in sizes],
            "fraction": fractions,
        },
        "attention_efficiency": max(
            1e-4, round(min(1.0, result.attention_flops_per_s / peaks[curve_dtype]), 4)
        ),
        "memory_efficiency": 1.0,
        "kernel_launch_us": round(result.launch_s * 1e6, 3),
        "tdp_w": round(result.power_w, 1),
        "notes": _notes(result),
        "sources": {
            "peak_tflops": f"{basis}: best median square-GEMM rate per dtype over n = {sizes}",
            "memory_gb": f"{basis}: total device/host memory reported by the system",
            "memory_tb_per_s": f"{basis}: median rate of large tensor copies, 2 bytes moved per byte copied",
            "onchip_mb": f"{basis}: last-level cache size reported by the system (0 = unknown)",
            "gemm_efficiency": f"{basis}: {curve_dtype} rate at the largest size over the best rate",
            "gemm_efficiency_curve": f"{basis}: {curve_dtype} median rate by size over the best rate",
            "attention_efficiency": f"{basis}: scaled_dot_product_attention FLOP/s over the {curve_dtype} GEMM peak",
            "memory_efficiency": f"{basis}: the measured copy rate is the peak, so 1 by construction",
            "kernel_launch_us": f"{basis}: median per-op time of back-to-back 1-element adds (launch/dispatch rate, synchronised once per batch)",
            "tdp_w": f"{basis}: enforced power limit from NVML where available (0 = unknown)",
        },
    }
    if result.kind == "gpu":  # the CUDA runtime's total is what a process may allocate
        mapping["usable_memory_gib"] = round(result.memory_bytes / 2**30, 3)
        mapping["sources"]["usable_memory_gib"] = (
            f"{basis}: the runtime's total device memory for a process (torch total_memory)"
        )
    return mapping


def _notes(result: ProfileResult) -> str:
    """The raw medians, so a profile keeps what it was derived from."""
    runs = "; ".join(
        f"{dtype} TFLOP/s by n: "
        + ", ".join(f"{n}={rate / 1e12:.4g}" for n, rate in sorted(rates.items()))
        for dtype, rates in result.gemm_flops_per_s.items()
    )
    n = result.notes
    return (
        f"torch {n.get('torch')}, {n.get('threads')} threads, quick={n.get('quick')}, "
        f"1-min load average {n.get('load')}, "
        f"median of {n.get('repeats')} repeats; {runs}; "
        f"attention {result.attention_flops_per_s / 1e12:.4g} TFLOP/s"
    )


def profile_to_yaml(result: ProfileResult) -> str:
    """The device file text for ``result``."""
    header = f"# Device profile measured by `nas hw profile` on {result.date}.\n"
    return header + yaml.safe_dump(profile_to_mapping(result), sort_keys=False, width=100)
