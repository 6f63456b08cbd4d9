"""Achieved speed of one kernel class on one device, vectorised over shapes.

GEMMs run below peak for three reasons that this module models separately:

* **size**: small GEMMs cannot fill the device (fill/drain, wave quantisation, launch). The
  device profile's ``gemm_efficiency_curve`` (fraction of peak vs FLOPs per call, measured or
  estimated per device) covers it; without a curve the large-GEMM ``gemm_efficiency`` holds.
  The curve is stated for the profile's bf16 rate, so for another dtype it is read at the
  FLOPs that take the same time at bf16 (``flops * peak_bf16 / peak_dtype``): the curve's
  basis is a fixed per-call overhead in time.
* **tile quantisation**: cuBLAS/CUTLASS tiles the output in 128-wide blocks; a dimension
  that is not a multiple of the tile wastes the rest of the last tile (NVIDIA, "Matrix
  Multiplication Background User's Guide", section "Tile quantization").
* **skinny shapes are memory-bound**: a GEMM's time is at least the bytes of its three
  operands over the achieved memory bandwidth (roofline; Williams et al. 2009, CACM 52(4)).

Every kernel takes at least the device's ``kernel_launch_s`` (a kernel shorter than the
launch gap leaves the device idle between launches).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hw_profiles.types import Device

__all__ = [
    "GEMM_TILE",
    "attention_time_s",
    "gemm_efficiency",
    "gemm_time_s",
    "grouped_gemm_time_s",
    "memory_time_s",
    "tile_efficiency",
]

FloatArray = npt.NDArray[np.float64]

# Output tile edge of the large cuBLAS/CUTLASS tensor-core kernels (128x128 and 128x256
# tiles; NVIDIA Matrix Multiplication Background User's Guide, "Tile quantization").
GEMM_TILE = 128.0


def _as_array(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def gemm_efficiency(device: Device, *, flops: npt.ArrayLike, dtype: str = "bf16") -> FloatArray:
    """Fraction of ``dtype`` peak reached by one GEMM call of ``flops`` FLOPs (size effect only)."""
    f = _as_array(flops)
    curve = device.gemm_efficiency_curve
    if curve is None:
        return np.full_like(f, device.gemm_efficiency)
    scale = device.peak("bf16") / device.peak(dtype) if "bf16" in device.peak_flops_per_s else 1.0
    return _as_array(curve.at(np.maximum(f * scale, 1.0)))


def tile_efficiency(m: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """Useful fraction of the output tiles for an ``m x n`` output (tile quantisation)."""
    m_, n_ = np.maximum(_as_array(m), 1.0), np.maximum(_as_array(n), 1.0)
    pad_m = np.ceil(m_ / GEMM_TILE) * GEMM_TILE
    pad_n = np.ceil(n_ / GEMM_TILE) * GEMM_TILE
    return (m_ / pad_m) * (n_ / pad_n)


def gemm_time_s(
    device: Device,
    *,
    m: npt.ArrayLike,
    n: npt.ArrayLike,
    k: npt.ArrayLike,
    dtype: str = "bf16",
    calls: npt.ArrayLike = 1.0,
) -> FloatArray:
    """Time of ``calls`` GEMMs ``(m x k) @ (k x n)``; operands and output in ``dtype``
    (fp8 GEMMs write bf16, counted as 2 bytes)."""
    m_, n_, k_ = _as_array(m), _as_array(n), _as_array(k)
    flops = 2.0 * m_ * n_ * k_
    elem = 1.0 if dtype == "fp8" else 2.0
    eff = gemm_efficiency(device, flops=flops, dtype=dtype) * tile_efficiency(m_, n_)
    compute_s = flops / (device.peak(dtype) * np.maximum(eff, 1e-6))
    bytes_moved = elem * (m_ * k_ + k_ * n_) + 2.0 * m_ * n_
    memory_s = bytes_moved / (device.memory_bandwidth_bytes_per_s * device.memory_efficiency)
    one = np.maximum(np.maximum(compute_s, memory_s), device.kernel_launch_s)
    return np.where(flops > 0, one, 0.0) * _as_array(calls)


def grouped_gemm_time_s(
    device: Device,
    *,
    groups: npt.ArrayLike,
    m: npt.ArrayLike,
    n: npt.ArrayLike,
    k: npt.ArrayLike,
    dtype: str = "bf16",
) -> FloatArray:
    """One grouped GEMM (MoE experts): ``groups`` problems of ``m x k @ k x n`` in one launch.

    The size effect is read at the total FLOPs of the launch (a grouped kernel fills the
    device with all groups' tiles, as CUTLASS grouped GEMM does); tile quantisation applies
    per group, so few tokens per expert still waste tile rows."""
    g, m_, n_, k_ = _as_array(groups), _as_array(m), _as_array(n), _as_array(k)
    flops = 2.0 * g * m_ * n_ * k_
    elem = 1.0 if dtype == "fp8" else 2.0
    eff = gemm_efficiency(device, flops=flops, dtype=dtype) * tile_efficiency(m_, n_)
    compute_s = flops / (device.peak(dtype) * np.maximum(eff, 1e-6))
    bytes_moved = g * (elem * (m_ * k_ + k_ * n_) + 2.0 * m_ * n_)
    memory_s = bytes_moved / (device.memory_bandwidth_bytes_per_s * device.memory_efficiency)
    one = np.maximum(np.maximum(compute_s, memory_s), device.kernel_launch_s)
    return np.where(flops > 0, one, 0.0)


def attention_time_s(
    device: Device, *, flops: npt.ArrayLike, calls: npt.ArrayLike = 1.0, kernel: str = "flash"
) -> FloatArray:
    """Fused attention: FLOPs at the device's attention efficiency for ``kernel`` (``flash``:
    the best fused kernel, ``flash2``: FlashAttention-2) of the bf16 peak (attention stays in
    bf16 in FP8 recipes: NVIDIA Transformer Engine FP8 primer)."""
    f = _as_array(flops)
    t = f / (device.peak("bf16") * device.attention_efficiency_for(kernel))
    return np.where(f > 0, np.maximum(t, device.kernel_launch_s * _as_array(calls)), 0.0)


def memory_time_s(
    device: Device, *, bytes_moved: npt.ArrayLike, calls: npt.ArrayLike = 1.0
) -> FloatArray:
    """Memory-bound kernels (norms, activations, softmax, optimizer): bytes over the achieved
    HBM bandwidth, at least one launch gap per call."""
    b = _as_array(bytes_moved)
    t = b / (device.memory_bandwidth_bytes_per_s * device.memory_efficiency)
    return np.where(b > 0, np.maximum(t, device.kernel_launch_s * _as_array(calls)), 0.0)
