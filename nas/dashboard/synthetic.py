"""A synthetic run directory for tests, demos and the dashboard benchmark.

The numbers are made up (smooth functions of the architecture with noise), NOT a cost or
accuracy model: they exist only so the dashboard can be built and viewed without a search.
The files and columns follow what ``nas run`` writes (see docs/dashboard.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cost_models.train.memory import MEMORY_KEYS
from cost_models.train.step import TIME_KEYS

__all__ = ["write_synthetic_run"]

_REFERENCES = {  # name: (layers, d_model, heads, kv heads, d_ff, experts, top-k)
    "llama3-8b": (32, 4096, 32, 8, 14336, 0, 0),
    "mixtral-8x7b": (32, 4096, 32, 8, 14336, 8, 2),
}


def _frame(rng: np.random.Generator, n: int, system: str, speed: float) -> pd.DataFrame:
    layers = rng.choice([8, 16, 24, 32, 48, 64], n)
    d_model = rng.choice([1024, 2048, 3072, 4096, 6144, 8192], n)
    heads = d_model // 128
    kv = np.maximum(heads // rng.choice([1, 4, 8], n), 1)
    d_ff = (d_model * rng.choice([2.667, 3.5, 4.0], n)).astype(np.int64) // 256 * 256
    experts = rng.choice([0, 8, 16, 64], n)
    top_k = np.where(experts > 0, rng.choice([1, 2, 4], n), 0)
    frame = pd.DataFrame(
        {
            "param_num_layers": layers,
            "param_d_model": d_model,
            "param_num_heads": heads,
            "param_num_kv_heads": kv,
            "param_d_ff": d_ff,
            "param_num_experts": experts,
            "param_top_k": top_k,
            "param_ffn_activation": rng.choice(["swiglu", "gelu"], n),
        }
    )
    return _metrics(frame, rng, system, speed)


def _metrics(
    frame: pd.DataFrame, rng: np.random.Generator, system: str, speed: float
) -> pd.DataFrame:
    n = len(frame)
    L = frame["param_num_layers"].to_numpy(np.float64)
    d = frame["param_d_model"].to_numpy(np.float64)
    ff = frame["param_d_ff"].to_numpy(np.float64)
    e = frame["param_num_experts"].to_numpy(np.float64)
    k = frame["param_top_k"].to_numpy(np.float64)
    total = L * (4 * d * d + 3 * d * ff * np.maximum(e, 1))
    active = L * (4 * d * d + 3 * d * ff * np.maximum(k, 1))
    frame["total_params"] = total
    frame["active_params"] = active
    frame["loss"] = 1.7 + 400.0 / total**0.34 + rng.normal(0, 0.01, n)
    step = active / 2e8 / speed * (1 + rng.gamma(2.0, 0.05, n))
    shares = rng.dirichlet([8, 1, 1, 0.3, 1, 0.5, 0.2, 0.3], n)
    shares[:, TIME_KEYS.index("ep_comm")] *= e > 0  # no expert-parallel traffic in dense models
    shares /= shares.sum(axis=1, keepdims=True)
    for j, part in enumerate(TIME_KEYS):
        frame[f"time_{part}_s"] = step * shares[:, j]
    frame["step_time_s"] = step
    frame["decode_tpot_s"] = active * 2 / 3.35e12 / speed + rng.gamma(2.0, 2e-4, n)
    mem = np.column_stack([2 * total, 2 * total, 12 * total, L * d * 4e4, np.full(n, 2e9)]) / 64
    for j, part in enumerate(MEMORY_KEYS):
        frame[f"memory_{part}_bytes"] = mem[:, j]
    frame["memory_per_device_bytes"] = mem.sum(axis=1)
    frame["tokens_per_s"] = 4e6 / step
    for degree, choices in (("tp", [1, 2, 4, 8]), ("pp", [1, 2, 4]), ("cp", [1, 2])):
        frame[f"plan_{degree}"] = rng.choice(choices, n)
    frame["plan_dp"] = 64 // (frame["plan_tp"] * frame["plan_pp"] * frame["plan_cp"])
    frame["plan_ep"] = np.where(e > 0, np.minimum(e, 8), 1).astype(np.int64)
    frame["system"] = system
    frame["device_memory_bytes"] = 80e9  # an 80 GB device
    frame["feasible"] = frame["memory_per_device_bytes"] < frame["device_memory_bytes"]
    return frame


def write_synthetic_run(
    run_dir: Path,
    *,
    n_trials: int = 200,
    systems: Sequence[str] = ("dgx-h100",),
    objectives: Sequence[str] = ("loss", "step_time_s"),
    seed: int = 0,
) -> Path:
    """Write experiment.yaml, summary.json, trials.parquet, references.parquet and pareto.csv."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = []
    for i, system in enumerate(systems):
        frames.append(_frame(rng, n_trials // len(systems), system, speed=1.0 + 0.6 * i))
    trials = pd.concat(frames, ignore_index=True)
    trials.insert(0, "number", np.arange(len(trials)))
    trials.insert(1, "state", "COMPLETE")
    trials.insert(2, "duration_s", rng.gamma(2.0, 0.01, len(trials)))
    trials.loc[trials.index[-1], "state"] = "FAIL"
    trials.to_parquet(run_dir / "trials.parquet")
    refs = []
    for j, system in enumerate(systems):
        rows = pd.DataFrame(
            [dict(zip(_ARCH_KEYS, arch, strict=True)) for arch in _REFERENCES.values()]
        )
        rows["param_ffn_activation"] = "swiglu"
        rows = _metrics(rows, rng, system, speed=1.0 + 0.6 * j)
        rows.insert(0, "name", list(_REFERENCES))
        refs.append(rows)
    pd.concat(refs, ignore_index=True).to_parquet(run_dir / "references.parquet")
    directions = {name: "max" if name == "tokens_per_s" else "min" for name in objectives}
    experiment = {
        "name": run_dir.name,
        "space": "synthetic",
        "hardware": {"system": list(systems) if len(systems) > 1 else systems[0]},
        "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 4_000_000},
        "objectives": directions,
        "search": {"backend": "synthetic", "trials": n_trials, "seed": seed},
    }
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    complete = trials["state"] == "COMPLETE"
    summary = {  # the keys of a real run's summary.json (nas.runs)
        "name": run_dir.name,
        "backend": "synthetic",
        "trials": len(trials),
        "complete": int(complete.sum()),
        "failed": int((~complete).sum()),
        "pruned": 0,
        "feasible": int((complete & trials["feasible"]).sum()),
        "objectives": directions,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    trials.head(10).to_csv(run_dir / "pareto.csv", index=False)  # content unused by the dashboard
    return run_dir


_ARCH_KEYS = (
    "param_num_layers",
    "param_d_model",
    "param_num_heads",
    "param_num_kv_heads",
    "param_d_ff",
    "param_num_experts",
    "param_top_k",
)
