"""Throughput of the vectorised collective model: evaluations per second of
``collective_time_s`` over 1e6 (size, group, stride) elements, per op and system.

Usage: ``python bench/bench_collectives.py [--elements N] [--repeats R]``. Prints figures;
not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from cost_models.network.collectives import COLLECTIVE_OPS, collective_time_s
from hw_profiles.loader import load_system


def _inputs(n: int, max_devices: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = 10 ** rng.uniform(2, 10, n)
    log_max = int(np.log2(max_devices))
    groups = 2 ** rng.integers(0, log_max - 2, n)
    strides = 2 ** rng.integers(0, 3, n)
    return sizes, groups, strides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'system':<14} {'op':<15} {'median s':>9} {'evals/s':>14}")
    for name in ("dgx-h100", "tpu-v5p-pod"):
        system = load_system(name, num_devices=4096)
        sizes, groups, strides = _inputs(args.elements, system.num_devices)
        for op in COLLECTIVE_OPS:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                collective_time_s(
                    system,
                    op=op,  # type: ignore[arg-type]
                    size_bytes=sizes,
                    group_size=groups,
                    stride=strides,
                )
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            print(f"{name:<14} {op:<15} {median:>9.3f} {args.elements / median:>14,.0f}")


if __name__ == "__main__":
    main()
