"""The ray backend across the nodes of the local cluster (head + node_a + node_b, see
conftest.py): trials run on several nodes, and losing a node mid-run loses no trial."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import add_worker, alive_nodes, kill_worker
from nas_ray_helpers import proxy

from nas.runs import start_run

pytestmark = pytest.mark.ray
KILLED = threading.Event()


def test_trials_run_on_more_than_one_node_and_the_table_says_which(ray_driver, tmp_path) -> None:
    # trials of about a second: long enough that all three nodes get one at once
    exp = proxy(trials=6, steps=40, concurrency=3, sampler="nsga2", population_size=4)
    frame = start_run(exp, out=tmp_path / "run").trials
    assert (frame["state"] == "COMPLETE").all(), frame[["state", "fail_reason"]]
    nodes = {str(n["node_id"]): n for n in alive_nodes(ray_driver)}
    used = set(frame["node_id"])
    print(f"\n6 trials on {len(used)} nodes: {frame['node_id'].str[:8].value_counts().to_dict()}")
    assert used <= set(nodes), "every trial names a node of this cluster"
    assert len(used) >= 2
    workers = {k for k, n in nodes.items() if set(n["resources_total"]) & {"node_a", "node_b"}}
    assert used & workers, "worker nodes ran trials, not only the head"


def _kill_when_running(head, name: str, log: Path, done: threading.Event) -> None:
    """Kill worker node ``name`` once the first trial finished (the others are mid-run)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not done.is_set():
        if log.is_file() and "trial COMPLETE" in log.read_text():
            time.sleep(1.0)  # a fresh trial has started on every node
            kill_worker(head, name)
            KILLED.set()
            return
        time.sleep(0.2)


def test_losing_a_worker_node_mid_run_counts_every_trial_once(ray_driver, tmp_path) -> None:
    exp = proxy(trials=6, steps=200, concurrency=3, max_failures=2)  # seconds a trial
    run_dir = tmp_path / "run"
    done = threading.Event()
    killer = threading.Thread(
        target=_kill_when_running, args=(ray_driver, "node_b", run_dir / "run.log", done)
    )
    killer.start()
    try:
        result = start_run(exp, out=run_dir)
    finally:
        done.set()
        killer.join()
        if "node_b" not in ray_driver.workers:  # give the next tests their three nodes back
            add_worker(ray_driver, "node_b", nodes=3)
    frame = result.trials
    print(f"\nretries after the node loss: {frame['retries'].tolist()}")
    assert KILLED.is_set(), "node_b was killed while the run went on"
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert (frame["state"] == "COMPLETE").all(), frame[["state", "fail_reason"]]
    assert frame["retries"].sum() >= 1, "a trial was running on the lost node and was retried"
    assert result.summary["trials"] == 6 and result.summary["complete"] == 6


def test_preflight_skips_a_node_that_dies_while_it_is_checked(ray_driver, capsys) -> None:
    """A node killed just before the preflight is still listed as alive until the head
    notices (seconds): its pinned check cannot run. The preflight names it in a note and
    checks the others; it neither hangs nor fails with a traceback."""
    from nas.jobs import preflight

    pyproject = preflight._load_pyproject(str(Path(__file__).resolve().parents[2]))
    add_worker(ray_driver, "node_c", nodes=4)
    kill_worker(ray_driver, "node_c", wait_dead=False)
    checked, lines = preflight._nodes_report(pyproject)
    out = capsys.readouterr().out
    print(out)
    assert checked == 3, (checked, lines, out)
    assert not any("check failed" in line for line in lines), lines
    assert "node_c" not in " ".join(str(n) for n in alive_nodes(ray_driver))
