"""The Ray backend on this machine: proxy-train trials per minute with 1 and 2 concurrent
trials, and the per-trial overhead Ray adds over the Optuna backend for an analytical
evaluator (scaling_law).

Usage: ``python bench/bench_ray.py [--proxy-trials N] [--steps S] [--analytical-trials M]``.
Needs the ``ray`` extra. Starts a local Ray (``--num-cpus``, default 2) once; its start-up
time is printed separately and not counted in the figures. Prints figures; not part of the
test suite.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from nas.experiment import Experiment, experiment_from_dict
from nas.runs import start_run

_BASE: dict[str, Any] = {
    "space": "dense_decoder",
    "hardware": {"system": "dgx-h100", "num_devices": 8},
    "constraints": {"fits": True},
    "references": [],
}


def proxy_experiment(*, trials: int, steps: int, concurrency: int) -> Experiment:
    """Tiny real training on CPU: proxies 8..64 wide, 1..4 layers, batches of 8 x 64 bytes."""
    return experiment_from_dict(
        {
            **_BASE,
            "name": f"bench-ray-proxy-c{concurrency}",
            "space_overrides": {"num_layers": [8, 32], "d_model": [1024, 8192]},
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
            "search": {
                "backend": "ray",
                "sampler": "random",
                "trials": trials,
                "ray": {"concurrency": concurrency},
            },
        }
    )


def analytical_experiment(*, trials: int, backend: str) -> Experiment:
    return experiment_from_dict(
        {
            **_BASE,
            "name": f"bench-ray-analytical-{backend}",
            "space_overrides": {"num_layers": [8, 32], "d_model": [1024, 4096]},
            "workload": {
                "mode": "train",
                "seq_len": 4096,
                "global_batch_tokens": 2_097_152,
                "budget_gpu_hours": 2000,
            },
            "accuracy": {"evaluator": "scaling_law"},
            "objectives": {"loss": "min", "params_total": "min"},
            "search": {"backend": backend, "sampler": "random", "trials": trials},
        }
    )


def timed_run(experiment: Experiment, root: Path) -> tuple[float, int]:
    """Wall seconds of one run and its completed trials."""
    start = time.perf_counter()
    result = start_run(experiment, out=root / experiment.name)
    return time.perf_counter() - start, int(result.summary["complete"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy-trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--analytical-trials", type=int, default=20)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    import os

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, logging_level=logging.WARNING, log_to_driver=False)
    print(f"local Ray start ({args.num_cpus} CPUs): {time.perf_counter() - t0:.1f} s (not counted)")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        print(f"\nproxy_train, {args.proxy_trials} trials x {args.steps} steps:")
        print(f"{'concurrent':>10} {'wall s':>8} {'complete':>9} {'trials/min':>11}")
        for concurrency in (1, 2):
            exp = proxy_experiment(
                trials=args.proxy_trials, steps=args.steps, concurrency=concurrency
            )
            wall, done = timed_run(exp, root)
            print(f"{concurrency:>10} {wall:>8.1f} {done:>9} {60.0 * done / wall:>11.2f}")
        n = args.analytical_trials
        print(f"\nscaling_law, {n} trials, one at a time (references off):")
        walls = {}
        for backend in ("optuna", "ray"):
            walls[backend], done = timed_run(analytical_experiment(trials=n, backend=backend), root)
            print(
                f"  {backend:<7} {walls[backend]:6.2f} s  ({1000 * walls[backend] / n:.0f} ms/trial)"
            )
        overhead = (walls["ray"] - walls["optuna"]) / n
        print(f"Ray overhead per trial over the Optuna backend: {1000 * overhead:.0f} ms")
    ray.shutdown()


if __name__ == "__main__":
    main()
