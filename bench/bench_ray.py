"""The Ray backend on a 3-node local cluster (a head and two worker nodes, 1 CPU each, as the
tests start it): analytical quickstart trials/s against the local Optuna backend, and a
16-trial proxy_train search with and without ASHA (total training steps of each).

Usage: ``nice python bench/bench_ray.py [--quickstart-trials N] [--proxy-trials M]
[--steps S]``. Needs the ``ray`` extra. Starts the cluster with ``ray start`` on 127.0.0.1
(auth off: local only), stops exactly the processes it started; start-up is printed and not
counted. Prints figures; not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas.experiment import Experiment, experiment_from_dict, load_experiment
from nas.runs import start_run, with_overrides

ROOT = Path(__file__).resolve().parents[1]


def _ports(n: int) -> list[str]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [str(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_flags(tmp: Path, name: str) -> list[str]:
    agent, grpc, metrics, renv = _ports(4)
    return [
        "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
        "--object-store-memory", "200000000", "--temp-dir", str(tmp / name),
        "--dashboard-agent-listen-port", agent, "--dashboard-agent-grpc-port", grpc,
        "--metrics-export-port", metrics, "--runtime-env-agent-port", renv,
    ]  # fmt: skip


@contextlib.contextmanager
def local_cluster(tmp: Path) -> Iterator[str]:
    """Head + node_a + node_b on 127.0.0.1; yields the GCS address."""
    ray = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    gcs, dash = _ports(2)
    cmds = [[ray, "start", "--head", "--port", gcs, "--dashboard-port", dash,
             *_node_flags(tmp, "h")]]  # fmt: skip
    for name in ("node_a", "node_b"):
        cmds.append([ray, "start", "--address", f"127.0.0.1:{gcs}",
                     "--resources", json.dumps({name: 1}), *_node_flags(tmp, name)])  # fmt: skip
    procs = []
    try:
        for i, cmd in enumerate(cmds):
            log = (tmp / f"node{i}.log").open("wb")
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip
            time.sleep(3.0 if i == 0 else 0.0)  # the head's GCS first
        yield f"127.0.0.1:{gcs}"
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``ray start --block``, then SIGKILL to what is left of its session (Ray's
    workers keep the session but not the process group); nothing else is touched."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        with contextlib.suppress(OSError):
            if os.getsid(pid) == proc.pid:
                os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=15)


def _connect(address: str, nodes: int) -> float:
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    t0 = time.perf_counter()
    for _ in range(60):
        with contextlib.suppress(ConnectionError):
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            break
        time.sleep(1.0)
    while sum(1 for n in ray.nodes() if n["Alive"]) < nodes:
        time.sleep(0.5)
    return time.perf_counter() - t0


def quickstart(*, trials: int, backend: str) -> Experiment:
    exp = with_overrides(
        load_experiment(ROOT / "experiments" / "quickstart.yaml"), trials=trials, backend=backend
    )
    data = exp.model_dump(mode="json")
    data["search"]["ray"]["concurrency"] = 3  # one trial per node
    data["name"] = f"bench-quickstart-{backend}"
    return experiment_from_dict(data)


def proxy(*, trials: int, steps: int, asha: bool) -> Experiment:
    """Tiny real training on CPU (the proxy of tests/ray), 3 trials at once."""
    ray: dict[str, Any] = {"concurrency": 3}
    if asha:
        ray |= {"scheduler": "asha", "grace_steps": 10, "reduction_factor": 2}
    return experiment_from_dict(
        {
            "name": f"bench-proxy-{'asha' if asha else 'full'}",
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
            "search": {"backend": "ray", "sampler": "random", "trials": trials, "ray": ray},
            "references": [],
        }
    )


def timed(exp: Experiment, root: Path) -> tuple[float, Any]:
    start = time.perf_counter()
    result = start_run(exp, out=root / exp.name)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quickstart-trials", type=int, default=60)
    parser.add_argument("--proxy-trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bray-") as tmp:
        root = Path(tmp)
        with local_cluster(root) as address:
            print(f"3-node local cluster up in {_connect(address, 3):.1f} s (not counted)")
            n = args.quickstart_trials
            print(f"\nanalytical quickstart, {n} trials (nsga2, 4 references):")
            rate = {}
            for backend in ("optuna", "ray"):
                wall, result = timed(quickstart(trials=n, backend=backend), root)
                rate[backend] = result.summary["complete"] / wall
                nodes = result.trials.get("node_id")
                where = f", {nodes.nunique()} nodes" if nodes is not None else ", 1 process"
                print(f"  {backend:<7} {wall:6.1f} s  {rate[backend]:6.2f} trials/s{where}")
            print(f"  ray / optuna: {100 * rate['ray'] / rate['optuna']:.0f}% of the trials/s")
            m, s = args.proxy_trials, args.steps
            print(f"\nproxy_train, {m} trials x {s} steps, 3 at once:")
            print(f"{'scheduler':>10} {'wall s':>7} {'complete':>9} {'pruned':>7} {'steps':>6}")
            for asha in (False, True):
                wall, result = timed(proxy(trials=m, steps=s, asha=asha), root)
                frame = result.trials
                steps = int(frame["steps"].fillna(0).astype(int).sum())
                done = int((frame["state"] == "COMPLETE").sum())
                pruned = int((frame["state"] == "PRUNED").sum())
                name = "asha" if asha else "none"
                print(f"{name:>10} {wall:7.1f} {done:>9} {pruned:>7} {steps:>6}")
            import ray

            ray.shutdown()


if __name__ == "__main__":
    main()
