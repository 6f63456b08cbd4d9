"""The inference model against published measurements (``data/inference_measurements.csv``).

Each row keeps its source key (``published_inference.csv#N`` or
``published_measurements.csv#IN`` of the shared reference set). Metrics:

* ``ttft`` / ``tpot`` / ``e2e``: the whole model, :func:`~cost_models.inference.cost.inference_arrays`;
  ``e2e = ttft + (out_len - 1) * tpot`` (FasterTransformer reports the end-to-end latency of a
  batch-1 request of ``in_len`` prompt and ``out_len`` generated tokens).
* ``layer_prefill`` / ``layer_decode``: one transformer layer (attention, MLP, norms and the
  two TP all-reduces; no LM head), prefill of ``in_len`` tokens or one decode step at a KV
  length of ``in_len``.
* ``ttft_loaded``: TTFT of a request that arrives while ``batch - 1`` others decode (online
  serving at a concurrency of ``batch``): it waits on average half of the running decode
  iteration, then its prompt is prefilled (its first token comes with that iteration; the
  running sequences' decode tokens in it are left out, a few tokens beside the prompt).
* ``layer_linear``: the linear ops of one layer (QKV, O, up/gate, activation, down) on the
  ``1/tp`` shard for ``in_len`` tokens, as Vidur's per-op profiles report.

``stack`` names the serving engine's stack file (:mod:`cost_models.stacks`); its facts apply.
Its per-iteration host time (``step_overhead_s``) adds once per engine iteration
(:func:`engine_steps`: the prefill's chunks for TTFT, one for TPOT, both for end-to-end, none
per layer) and
is fitted per stack by :mod:`cost_models.validation.inference_fit`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cost_models.inference.calibration import INFERENCE_GEMM_DERATE, INFERENCE_GEMM_OVERLAP
from cost_models.inference.cost import (
    InferenceArrays,
    compute_dtype,
    inference_arrays,
    phase_time,
    prefill_chunks,
)
from cost_models.inference.ops import ACT_BYTES, Op, Shards, linear_ops, op_times
from cost_models.options import ServeOptions
from cost_models.stacks import resolve_serve
from cost_models.validation.train import shipped_system, summarize
from hw_profiles.loader import list_systems, load_device, one_device_system
from hw_profiles.types import System
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch, FloatArray

__all__ = [
    "DATA_FILE",
    "Measurement",
    "engine_steps",
    "layer_linear_time_s",
    "load_measurements",
    "measurement_system",
    "predict",
    "predict_grid",
    "publication",
    "serve_options",
    "single_device_system",
    "summarize",
    "validate_inference_rows",
]

DATA_FILE = Path(__file__).resolve().parent / "data" / "inference_measurements.csv"


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One published figure with everything needed to predict it (seconds)."""

    id: str
    source_key: str
    source: str
    arch: Architecture
    system_name: str
    n_dev: int
    tp: int
    weight_dtype: str
    kv_dtype: str
    engine: str
    stack: str
    batch: int
    in_len: int
    out_len: int
    metric: str
    measured_s: float


def _arch(row: dict[str, str]) -> Architecture:
    """The row's model: a reference model where ``arch_ref`` names one (MoE and MLA shapes
    the dense columns cannot describe), else the dense shape of its columns."""
    if row.get("arch_ref"):
        return load_model(row["arch_ref"])
    act = row["ffn_activation"]
    gpt = act == "gelu"  # GPT-2/3/J style: LayerNorm with biases
    return Architecture(
        name=row["model"],
        num_layers=int(row["layers"]),
        d_model=int(row["d_model"]),
        num_heads=int(row["heads"]),
        num_kv_heads=int(row["kv_heads"]),
        d_ff=int(row["d_ff"]),
        vocab_size=int(row["vocab"]),
        ffn_activation=act,  # type: ignore[arg-type]
        tie_embeddings=row["tie_embeddings"] == "true",
        learned_positions=int(row["learned_positions"]),
        norm="layernorm" if gpt else "rmsnorm",
        bias=gpt,
    )


def load_measurements(path: Path = DATA_FILE) -> list[Measurement]:
    """Rows of the measurement file as typed records."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Measurement(
            id=r["id"],
            source_key=r["source_key"],
            source=r["source"],
            arch=_arch(r),
            system_name=r["system"],
            n_dev=int(r["n_dev"]),
            tp=int(r["tp"]),
            weight_dtype=r["w_dtype"],
            kv_dtype=r["kv_dtype"],
            engine=r["engine"],
            stack=r["stack"],
            batch=int(r["batch"]),
            in_len=int(r["in_len"]),
            out_len=int(r["out_len"]),
            metric=r["metric"],
            measured_s=float(r["measured_s"]),
        )
        for r in rows
    ]


def single_device_system(device_name: str) -> System:
    """A one-device "system" for a device without a system profile (e.g. a PCIe L40S).
    Only valid for one device: no communication is ever priced on its placeholder tier."""
    return one_device_system(load_device(device_name))


def measurement_system(m: Measurement) -> System:
    """The row's system: its shipped profile at ``n_dev`` devices, or one device without one."""
    if m.system_name in _shipped_systems():
        return shipped_system(m.system_name, m.n_dev)
    if m.n_dev != 1:
        raise ValueError(f"{m.id}: system {m.system_name!r} has no profile for {m.n_dev} devices")
    return _single_device_system(m.system_name)


# The shipped profiles do not change while a process runs, and :func:`predict` is called
# once per row and grid value by the calibration: list and parse them once
# (:func:`cost_models.validation.train.shipped_system`).
@cache
def _shipped_systems() -> frozenset[str]:
    return frozenset(list_systems())


@cache
def _single_device_system(device_name: str) -> System:
    return single_device_system(device_name)


def _shards(tp: int) -> Shards:
    one = np.ones(1)
    return Shards(tp=one * tp, pp=one, dp=one, ep=one)


def layer_linear_time_s(
    m: Measurement,
    system: System,
    *,
    gemm_derate: FloatArray | float = INFERENCE_GEMM_DERATE,
    gemm_overlap: FloatArray | float = INFERENCE_GEMM_OVERLAP,
) -> FloatArray:
    """QKV, O, up/gate, activation and down of one layer for ``in_len`` tokens, one figure per
    element of ``gemm_derate``/``gemm_overlap`` (broadcast together)."""
    n = int(np.broadcast(np.asarray(gemm_derate), np.asarray(gemm_overlap)).size)
    b = ArchBatch.from_architectures([m.arch] * n)
    s = _shards(m.tp)
    tokens = np.full(n, float(m.in_len))
    ops = [o for o in linear_ops(b, s, tokens=tokens, weight_bytes=2.0) if o.name in
           ("attn_q", "attn_kv", "attn_o", "ffn_up", "ffn_down")]  # fmt: skip
    width: FloatArray = (2.0 + b.gated) * b.d_ff / s.tp  # read up (and gate), write
    zero = np.zeros(n)
    ops.append(Op(name="act", kind="elementwise", flops=zero, bytes=tokens * width * ACT_BYTES,
                  calls=np.ones(n), eff_flops=zero))  # fmt: skip
    dtype = compute_dtype(m.weight_dtype, system)
    t = op_times(ops, system.device, compute_dtype=dtype, gemm_derate=gemm_derate,
                 gemm_overlap=gemm_overlap)  # fmt: skip
    out: FloatArray = np.broadcast_to(sum(t.values(), np.zeros(n)), (n,)).astype(np.float64)
    return out


def engine_steps(m: Measurement) -> float:
    """Engine iterations in the measured figure (each pays the stack's ``step_overhead_s``):
    the prefill's chunks (:func:`~cost_models.inference.cost.prefill_chunks`) and one per
    further generated token; a loaded TTFT waits half a decode iteration first."""
    batch = 1 if m.metric == "ttft_loaded" else m.batch
    per_replica = np.ceil(batch / (m.n_dev // m.tp))
    prefill = float(prefill_chunks(np.array([per_replica * m.in_len]), serve_options(m))[0])
    steps = {"ttft": prefill, "ttft_loaded": prefill + 0.5, "tpot": 1.0,
             "e2e": prefill + m.out_len - 1.0}  # fmt: skip
    return steps.get(m.metric, 0.0)


def serve_options(m: Measurement) -> ServeOptions:
    """The row's serving stack with its calibrated per-iteration overhead."""
    return resolve_serve(m.stack, flag=f"{m.id}: stack")[1]


def predict(
    m: Measurement,
    *,
    gemm_derate: float = INFERENCE_GEMM_DERATE,
    gemm_overlap: float = INFERENCE_GEMM_OVERLAP,
    step_overhead_s: float | None = None,
) -> float:
    """The model's figure for ``m`` in seconds, under the row's stack; ``step_overhead_s``
    replaces the stack's per-iteration overhead (the calibration's grid)."""
    one = np.ones(1)
    grid = predict_grid(m, gemm_derate=one * gemm_derate, gemm_overlap=one * gemm_overlap,
                        step_overhead_s=step_overhead_s)  # fmt: skip
    return float(grid[0])


def predict_grid(
    m: Measurement,
    *,
    gemm_derate: FloatArray,
    gemm_overlap: FloatArray,
    step_overhead_s: float | None = None,
) -> FloatArray:
    """:func:`predict` at every (``gemm_derate[i]``, ``gemm_overlap[i]``) in one vectorised
    evaluation (the calibration's grid: one call per row instead of one per grid point)."""
    engine = serve_options(m)
    overhead_s = engine.step_overhead_s if step_overhead_s is None else step_overhead_s
    base = _predict_without_overhead(
        m, replace(engine, step_overhead_s=0.0), gemm_derate, gemm_overlap
    )
    out: FloatArray = base + engine_steps(m) * overhead_s
    return out


def _predict_without_overhead(
    m: Measurement, engine: ServeOptions, gemm_derate: FloatArray, gemm_overlap: FloatArray
) -> FloatArray:
    system = measurement_system(m)
    if m.metric == "layer_linear":
        return layer_linear_time_s(m, system, gemm_derate=gemm_derate, gemm_overlap=gemm_overlap)
    n = len(gemm_derate)
    b = ArchBatch.from_architectures([m.arch] * n)
    gemm = {"gemm_derate": gemm_derate, "gemm_overlap": gemm_overlap}
    if m.metric in ("layer_prefill", "layer_decode"):
        prefill = m.metric == "layer_prefill"
        one = np.ones(n)
        t = phase_time(b, _shards(m.tp), system,
                       tokens=one * m.batch * (m.in_len if prefill else 1),
                       rows=one * m.batch, context=one * m.in_len, prefill=prefill,
                       weight_dtype=m.weight_dtype, kv_dtype=m.kv_dtype,
                       include_head=False, serve=engine, **gemm)  # fmt: skip
        layer: FloatArray = sum(t.values(), np.zeros(n))
        return layer

    def run(batch: int) -> InferenceArrays:
        return inference_arrays(b, system, tp=m.tp, pp=1, ep=1, dp=m.n_dev // m.tp,
                                batch=batch, prompt_len=m.in_len, gen_len=m.out_len,
                                weight_dtype=m.weight_dtype, kv_dtype=m.kv_dtype, serve=engine,
                                **gemm)  # fmt: skip

    if m.metric == "ttft_loaded":
        loaded: FloatArray = run(1).ttft_s + 0.5 * run(max(m.batch - 1, 1)).tpot_s
        return loaded
    r = run(m.batch)
    value = {"ttft": r.ttft_s, "tpot": r.tpot_s, "e2e": r.e2e_s}.get(m.metric)
    if value is None:
        raise ValueError(f"{m.id}: metric must be ttft, ttft_loaded, tpot, e2e or a layer metric; got {m.metric!r}")  # fmt: skip
    return value


def publication(source: str) -> str:
    """The publication a row's ``source`` names: the repository (``owner/name``) of a
    repository path, else the text before a parenthesis (``"NVIDIA/FasterTransformer
    docs/gpt_guide.md (Performance: GPT-89B)"`` and ``"... (Performance: GPT-175B)"`` are one
    source; so are all of Vidur's profiling files)."""
    first = source.split()[0] if source.split() else source
    if "/" in first:
        return first
    return source.split(" (")[0].strip()


def validate_inference_rows(path: Path = DATA_FILE) -> list[dict[str, Any]]:
    """Measured vs predicted for every row: ``id``, ``source``, ``metric``, ``measured``,
    ``predicted`` (seconds), ``error`` (predicted / measured - 1), plus model, hardware and
    engine for display."""
    out: list[dict[str, Any]] = []
    for m in load_measurements(path):
        predicted = predict(m)
        out.append({
            "id": m.id,
            "source": m.source_key,
            "publication": publication(m.source),
            "metric": m.metric,
            "measured": m.measured_s,
            "predicted": predicted,
            "error": predicted / m.measured_s - 1.0,
            "model": m.arch.name,
            "hardware": f"{m.n_dev}x {m.system_name} tp{m.tp}",
            "engine": m.engine,
            "stack": m.stack,
        })  # fmt: skip
    return out
