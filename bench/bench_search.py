"""Search benchmarks: sampler quality against the exact front, exhaustive throughput, driver
overhead. Prints tables; not part of the test suite.

    nice python bench/bench_search.py                       # everything, defaults below
    nice python bench/bench_search.py --trials 200 500 --seeds 0 --samplers nsga2 random
    nice python bench/bench_search.py --only throughput

1. Hypervolume ratio: an enumerable space (dense decoder, 153,900 candidates, one DGX H100
   node, 20B training tokens; objectives loss and step time, constraint: fits memory) is
   evaluated whole with the vectorised cost model (nas.problem.grid_eval); each sampler then
   searches the same table (a trial looks its candidate up, so samplers are compared on
   identical values) and its hypervolume after N trials is divided by the exact front's.
   Hypervolume in the objective space normalised by the exact front's ideal and nadir,
   reference point 1.1 (nas.runs).
2. Exhaustive throughput: the full MoE decoder space (1,105,920 candidates) on one node with
   a fixed tp=8 plan, grid evaluation plus the exact front.
3. Driver overhead: quickstart trials on SQLite; time per trial not spent in the cost model
   and evaluator.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from nas.experiment import SearchSettings, experiment_from_dict, load_experiment
from nas.problem import ExperimentProblem
from nas.runs import REFERENCE_MARGIN
from nas.search.base import drive
from nas.search.exhaustive import judge_grid
from nas.search.optuna_backend import OptunaSearcher, make_sampler, open_storage
from nas.search.pareto import hypervolume, non_dominated, normalise, to_minimisation

ROOT = Path(__file__).resolve().parents[1]
ENUMERABLE: dict[str, Any] = {
    "name": "bench-enumerable",
    "space": "dense_decoder",
    "space_overrides": {
        "num_layers": {"range": [8, 96], "step": 2},
        "d_model": {"range": [1024, 8192], "step": 128},
        "num_kv_heads": [1, 2, 4, 8, 16],
        "ffn_ratio": [2.0, 2.5, 2.6875, 3.0, 3.5, 4.0],
    },
    "hardware": {"system": "dgx-h100", "num_devices": 8},
    "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 2097152, "tokens": 2e10},
    "objectives": {"loss": "min", "step_time_s": "min"},
    "constraints": {"fits": True},
    "search": {"backend": "exhaustive", "max_candidates": 2_000_000},
}


class LookupProblem:
    """Suggests like the space and answers from the precomputed grid table."""

    def __init__(self, problem: ExperimentProblem, table: pd.DataFrame) -> None:
        self.problem = problem
        self.objectives = problem.objectives
        self.constraints = problem.constraints
        self.params = [c for c in table.columns if c.startswith("param_")]
        keys = zip(*(table[c].to_numpy(dtype=float) for c in self.params), strict=True)
        self.index = {k: i for i, k in enumerate(keys)}
        cols = [o.metric for o in self.objectives] + ["fits", "device_memory_bytes"]
        self.rows = table[cols].to_dict("records")

    def suggest(self, trial: Any) -> int:
        self.problem.space.suggest(trial)
        key = tuple(float(trial.params[c[len("param_") :]]) for c in self.params)
        return self.index[key]

    def evaluate(self, candidate: int) -> dict[str, Any]:
        return dict(self.rows[candidate])

    def device_memory_bytes(self, record: Any) -> float:
        return float(record["device_memory_bytes"])


SCALES: dict[str, Any] = {"linear": lambda v: v, "log10": np.log10}
REF = np.full(2, REFERENCE_MARGIN)


def _exact(problem: ExperimentProblem, table: pd.DataFrame) -> dict[str, tuple[Any, Any, float]]:
    """Per scale: ideal and nadir of the exact front and its hypervolume."""
    names = [o.metric for o in problem.objectives]
    ok = table[table["feasible"]]
    out = {}
    for scale, f in SCALES.items():
        exact = f(to_minimisation(ok[names].to_numpy(dtype=float), ["min"] * len(names)))
        ideal, nadir = exact.min(axis=0), exact[non_dominated(exact)].max(axis=0)
        out[scale] = (ideal, nadir, hypervolume(normalise(exact, ideal=ideal, nadir=nadir), REF))
    return out


def _search(lookup: LookupProblem, sampler: str, seed: int, trials: int) -> list[Any]:
    """Feasible objective vectors of each trial in order (None where infeasible)."""
    settings = SearchSettings(sampler=sampler, seed=seed, trials=trials)  # type: ignore[arg-type]
    study = optuna.create_study(
        directions=["minimize"] * len(lookup.objectives),
        sampler=make_sampler(settings, has_constraints=True),
    )
    t0 = time.perf_counter()
    drive(OptunaSearcher(study, n_trials=trials), lookup)  # type: ignore[arg-type]
    print(
        f"  {sampler} seed {seed}: {trials} trials in {time.perf_counter() - t0:.1f} s", flush=True
    )
    done = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [
        t.values
        if t.values is not None and all(c <= 0 for c in t.user_attrs["constraints"])
        else None
        for t in done
    ]


def bench_hypervolume(trials: list[int], seeds: list[int], samplers: list[str]) -> None:
    """Both objectives are minimised and positive, so the log10 scale is defined; it weighs
    step times from 0.1 to 100 s evenly instead of letting the slowest candidates dominate."""
    problem = ExperimentProblem(experiment_from_dict(ENUMERABLE))
    start = time.perf_counter()
    table = judge_grid(problem, problem.evaluate_grid(max_candidates=2_000_000))
    print(
        f"enumerable space: {len(table):,} candidates, {int(table['feasible'].sum()):,} "
        f"feasible, exact front {int(table['on_front'].sum())} points "
        f"(grid evaluated in {time.perf_counter() - start:.1f} s)"
    )
    exact = _exact(problem, table)
    lookup = LookupProblem(problem, table)
    rows = []
    for sampler, seed in itertools.product(samplers, seeds):
        values = _search(lookup, sampler, seed, max(trials))
        for n, (scale, f) in itertools.product(trials, SCALES.items()):
            pts = [v for v in values[:n] if v is not None]
            ideal, nadir, hv_exact = exact[scale]
            found = f(np.array(pts, dtype=float).reshape(-1, 2))
            hv = hypervolume(normalise(found, ideal=ideal, nadir=nadir), REF) if pts else 0.0
            rows.append(
                {
                    "sampler": sampler,
                    "seed": seed,
                    "trials": n,
                    "scale": scale,
                    "hv_ratio": hv / hv_exact,
                }
            )
    frame = pd.DataFrame(rows)
    for scale in SCALES:
        pivot = frame[frame["scale"] == scale].pivot_table(
            index="sampler", columns="trials", values="hv_ratio", aggfunc=["mean", "min"]
        )
        print(
            f"\nhypervolume / exact hypervolume, {scale} objectives (mean and worst over "
            f"seeds {', '.join(map(str, seeds))})"
        )
        print(pivot.round(4).to_string())


def bench_throughput() -> None:
    data = copy.deepcopy(ENUMERABLE)
    data.update(space="moe_decoder", space_overrides={}, plan={"mode": "fixed", "fixed": {"tp": 8}})
    problem = ExperimentProblem(experiment_from_dict(data))
    start = time.perf_counter()
    grid = problem.evaluate_grid(max_candidates=5_000_000)
    mid = time.perf_counter()
    judged = judge_grid(problem, grid)
    end = time.perf_counter()
    n = len(judged)
    print(
        f"\nexhaustive: {n:,} candidates (moe_decoder, fixed tp=8 plan) in {end - start:.1f} s "
        f"(grid {mid - start:.1f} s, front {end - mid:.1f} s): {n / (end - start):,.0f} "
        f"candidates/s; front {int(judged['on_front'].sum())} points"
    )


def bench_overhead(trials: int) -> None:
    exp = load_experiment(ROOT / "experiments" / "quickstart.yaml")
    problem = ExperimentProblem(exp)
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(exp.search, Path(tmp))  # study.db, WAL as in a real run
        study = optuna.create_study(
            storage=storage,
            directions=["minimize", "minimize"],
            sampler=make_sampler(exp.search, has_constraints=True),
        )
        t0 = time.perf_counter()
        drive(OptunaSearcher(study, n_trials=trials), problem)
        total = time.perf_counter() - t0
        evals = [
            float(__import__("json").loads(t.user_attrs["record"])["eval_s"])
            for t in study.get_trials()
            if "record" in t.user_attrs
        ]
    per_trial = total / trials
    in_models = float(np.mean(evals))
    print(
        f"\ndriver overhead (quickstart, SQLite, NSGA-II, {trials} trials): "
        f"{per_trial * 1e3:.1f} ms per trial, of which {in_models * 1e3:.1f} ms in the cost "
        f"model + evaluator -> {1e3 * (per_trial - in_models):.1f} ms driver overhead "
        f"(sampling, storage, record)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["nsga2", "tpe", "random"])
    parser.add_argument("--overhead-trials", type=int, default=100)
    parser.add_argument("--only", choices=["hypervolume", "throughput", "overhead"])
    args = parser.parse_args()
    if args.only in (None, "throughput"):
        bench_throughput()
    if args.only in (None, "overhead"):
        bench_overhead(args.overhead_trials)
    if args.only in (None, "hypervolume"):
        bench_hypervolume(sorted(args.trials), args.seeds, args.samplers)


if __name__ == "__main__":
    main()
