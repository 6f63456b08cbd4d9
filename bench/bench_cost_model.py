"""Speed of the vectorised training cost model and of the planner (prints figures).

1. (architecture, plan) pairs per second through :func:`cost_models.train.step.train_cost` in one
   call of N pairs, against a plain per-candidate Python loop over the same pairs (one call
   per pair); numpy element-wise work runs on one core.
2. Planner time for llama3.1-405b on 1,024 GPUs of dgx-h100 (targets: >= 200,000 pairs/s (one core) and
   < 1 s).

Run: ``python bench/bench_cost_model.py [--pairs 100000] [--loop 300]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cost_models.plan import TrainWorkload
from cost_models.plans import enumerate_plans
from cost_models.train.planner import plan_training
from cost_models.train.step import train_cost
from hw_profiles.loader import load_system
from search_spaces.catalogue import load_model
from search_spaces.counts import ArchBatch


def random_archs(n: int, rng: np.random.Generator) -> ArchBatch:
    d = rng.choice([4096.0, 5120.0, 6144.0, 8192.0], size=n)
    return ArchBatch.from_arrays(
        num_layers=rng.choice([32.0, 48.0, 64.0, 80.0], size=n),
        d_model=d,
        num_heads=d / 128.0,
        num_kv_heads=np.full(n, 8.0),
        head_dim=np.full(n, 128.0),
        d_ff=np.round(d * rng.uniform(2.5, 4.0, size=n) / 256.0) * 256.0,
        vocab_size=np.full(n, 128256.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--loop", type=int, default=300, help="pairs timed in the plain loop")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    system = load_system("dgx-h100", 64)
    workload = TrainWorkload(seq_len=4096)
    plans = enumerate_plans(load_model("llama3-70b"), system, workload)
    plan_batch = plans.take(rng.integers(0, len(plans), size=args.pairs))
    archs = random_archs(args.pairs, rng)

    train_cost(
        archs.take(np.arange(100)),
        plan_batch.take(np.arange(100)),
        system=system,
        workload=workload,
    )
    start = time.perf_counter()
    vec = train_cost(archs, plan_batch, system=system, workload=workload)
    vec_s = time.perf_counter() - start
    rate = args.pairs / vec_s

    n_loop = min(args.loop, args.pairs)
    start = time.perf_counter()
    loop_steps = [
        float(
            train_cost(
                archs.take([i]), plan_batch.take([i]), system=system, workload=workload
            ).step_time_s[0]
        )
        for i in range(n_loop)
    ]
    loop_s = time.perf_counter() - start
    loop_rate = n_loop / loop_s
    assert np.allclose(loop_steps, vec.step_time_s[:n_loop], rtol=1e-9), (
        "loop and vectorised disagree"
    )

    print(
        f"vectorised: {args.pairs:,} (architecture, plan) pairs in {vec_s:.3f} s = {rate:,.0f} pairs/s "
        f"(target >= 200,000 per core, issue 14)"
    )
    print(f"plain per-candidate loop: {n_loop} pairs in {loop_s:.3f} s = {loop_rate:,.0f} pairs/s")
    print(f"ratio vectorised / loop: {rate / loop_rate:,.0f}x")

    arch = load_model("llama3.1-405b")
    big = load_system("dgx-h100", 1024)
    w = TrainWorkload(seq_len=8192)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        choice = plan_training(arch, big, w)
        times.append(time.perf_counter() - start)
    print(
        f"planner llama3.1-405b on 1,024 x dgx-h100 (seq 8192): {choice.candidates:,} candidates, "
        f"{choice.feasible_fitting:,} fit; best of 3 {min(times):.3f} s, median {sorted(times)[1]:.3f} s "
        f"(target < 1 s)"
    )
    best = choice.best
    print(
        f"  chosen: tp{best.tp} pp{best.pp} dp{best.dp} cp{best.cp} vpp{best.vpp} sp={best.sequence_parallel} "
        f"mb{best.micro_batch} zero{best.zero} {best.recompute}; step {choice.top[0][1]:.2f} s"
    )


if __name__ == "__main__":
    main()
