"""Experiments and a crashing problem for the Ray tests (importable by Ray workers)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from nas.experiment import Experiment, experiment_from_dict
from nas.problem import Candidate, ExperimentProblem


def _search(trials: int, sampler: str, population_size: int | None, ray: Any) -> dict[str, Any]:
    search = {"backend": "ray", "sampler": sampler, "trials": trials, "ray": ray}
    return search | ({"population_size": population_size} if population_size else {})


def analytical(
    *, trials: int = 4, sampler: str = "random", population_size: int | None = None, **ray: Any
) -> Experiment:
    """A small scaling-law search on one DGX H100 node (seconds per trial at most)."""
    return experiment_from_dict(
        {
            "name": "ray-small",
            "space": "dense_decoder",
            "space_overrides": {"num_layers": [8, 32], "d_model": [1024, 4096]},
            "hardware": {"system": "dgx-h100", "num_devices": 8},
            "workload": {
                "mode": "train",
                "seq_len": 4096,
                "global_batch_tokens": 2_097_152,
                "budget_gpu_hours": 2000,
            },
            "accuracy": {"evaluator": "scaling_law"},
            "objectives": {"loss": "min", "params_total": "min"},
            "constraints": {"fits": True},
            "search": _search(trials, sampler, population_size, ray),
            "references": ["gpt2-124m"],
        }
    )


def proxy(
    *,
    trials: int,
    steps: int,
    sampler: str = "random",
    population_size: int | None = None,
    **ray: Any,
) -> Experiment:
    """Tiny real proxy training: widths 8..64, 1..4 layers, ``steps`` steps of 8 x 64 bytes."""
    return experiment_from_dict(
        {
            "name": "ray-proxy",
            "space": "dense_decoder",
            "space_overrides": {"num_layers": [8, 32], "d_model": [1024, 8192]},
            "hardware": {"system": "dgx-h100", "num_devices": 8},
            "workload": {
                "mode": "train",
                "seq_len": 4096,
                "global_batch_tokens": 2_097_152,
                "tokens": 2.0e10,
            },
            "accuracy": {
                "evaluator": "proxy_train",
                "settings": {
                    "steps": steps,
                    "batch_size": 8,
                    "seq_len": 64,
                    "width_factor": 1 / 128,
                    "depth_factor": 1 / 8,
                    "max_corpus_bytes": 400_000,
                    "eval_every": 10,
                    "eval_batches": 1,
                    "device": "cpu",
                },
            },
            "objectives": {"loss": "min", "step_time_s": "min"},
            "constraints": {"fits": True},
            "search": _search(trials, sampler, population_size, ray),
            "references": [],
        }
    )


class CrashOnceProblem(ExperimentProblem):
    """Ends its worker process (``os._exit``) on the first attempt at each candidate; a marker
    file per candidate in ``marker_dir`` records the attempt."""

    def __init__(self, experiment: Experiment, marker_dir: str) -> None:
        super().__init__(experiment)
        self.marker_dir = marker_dir

    def evaluate(self, candidate: Candidate) -> dict[str, Any]:
        key = hashlib.sha1(repr(candidate.arch).encode()).hexdigest()[:16]
        marker = Path(self.marker_dir) / key
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(3)  # the worker dies mid-trial, as on an OOM kill or a lost node
        return super().evaluate(candidate)
