"""A real local Ray cluster for the Ray tests: a head and two worker nodes on 127.0.0.1,
free ports, token auth, 1 CPU per node, each worker node with a custom resource of its
name (``node_a``, ``node_b``); started once per session.

The head runs as ``ray start --head --block`` in its own session; teardown ends that process
group (SIGTERM, then SIGKILL), so only the Ray processes this fixture started are stopped —
``ray stop --force`` would also end any other Ray of this user on the machine. The auth token
comes from ``ray get-auth-token --generate`` with ``HOME`` pointed at a temporary directory, so
the user's ``~/.ray/auth_token`` is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 180.0
WORKER_NODES = ("node_a", "node_b")  # custom resource of each worker node
OBJECT_STORE_BYTES = 200_000_000  # three nodes on a 24 GB machine shared with others


@dataclass(frozen=True, kw_only=True)
class Head:
    gcs_address: str  # for ray.init / search.ray.address
    dashboard_url: str  # for the Jobs API (nas submit --address)
    token: str
    env: dict[str, str]  # environment of a client of this head (token auth on)
    tmp: Path  # logs of the head and the worker nodes
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _ray_bin() -> str:
    path = Path(sys.executable).parent / "ray"
    return str(path) if path.exists() else "ray"


def _wait_ready(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"}).list_jobs()
            return
        except Exception:
            time.sleep(1.0)
    pytest.fail(f"Ray head not ready after {START_TIMEOUT_S:g} s: {log.read_text()[-2000:]}")


def _session_pids(sid: int) -> list[int]:
    out = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            if os.getsid(pid) == sid:
                out.append(pid)
        except OSError:
            continue
    return out


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each ``ray start --block`` (it stops its services), all at once, then
    SIGKILL to whatever is left in their sessions: Ray's workers run in process groups of
    their own but keep the session of their node, so nothing outside what this fixture
    started is touched."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:
        for pid in _session_pids(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[Head]:
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    tmp = Path(tempfile.mkdtemp(prefix="nasray-"))  # short: Ray's socket paths have a limit
    home = tmp / "home"
    home.mkdir()
    base = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    token = subprocess.run(
        [_ray_bin(), "get-auth-token", "--generate"],
        env=base,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert token, "ray get-auth-token --generate printed no token"
    env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED"):
            mp.setenv(key, env[key])
        _reload_auth()
        try:
            yield from _run_head(tmp, env, token)
        finally:
            mp.undo()
            _reload_auth()


def _reload_auth() -> None:
    """Ray reads RAY_AUTH_MODE and the token once per process (when ``ray`` is imported):
    reload both after changing them (what Ray's own tests do,
    ``ray._private.authentication_test_utils.reset_auth_token_state``)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def _node_ports() -> list[str]:
    agent, agent_grpc, metrics, runtime_env = _free_ports(4)
    return [
        "--dashboard-agent-listen-port", str(agent),
        "--dashboard-agent-grpc-port", str(agent_grpc),
        "--metrics-export-port", str(metrics),
        "--runtime-env-agent-port", str(runtime_env),
    ]  # fmt: skip


def _run_head(tmp: Path, env: dict[str, str], token: str) -> Iterator[Head]:
    gcs, dash, client = _free_ports(3)
    log = tmp / "head.log"
    cmd = [
        _ray_bin(), "start", "--head", "--block",
        "--port", str(gcs), "--dashboard-port", str(dash), "--dashboard-host", "127.0.0.1",
        "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
        "--ray-client-server-port", str(client), *_node_ports(),
        "--object-store-memory", str(OBJECT_STORE_BYTES),
        "--temp-dir", str(tmp / "r"), "--include-dashboard", "true",
    ]  # fmt: skip
    proc = _start(cmd, env, log)
    head = Head(
        gcs_address=f"127.0.0.1:{gcs}",
        dashboard_url=f"http://127.0.0.1:{dash}",
        token=token,
        env=env,
        tmp=tmp,
    )
    try:
        _wait_ready(head.dashboard_url, token, proc, log)
        for i, name in enumerate(WORKER_NODES):
            add_worker(head, name, nodes=2 + i)
        yield head
    finally:
        _stop(*head.workers.values(), proc)
        shutil.rmtree(tmp, ignore_errors=True)


def add_worker(head: Head, name: str, *, nodes: int) -> None:
    """Start worker node ``name`` and wait until the cluster has ``nodes`` alive nodes; one
    more try when ``ray start`` exits early (a port taken between choosing and binding)."""
    for attempt in range(2):
        log = head.tmp / f"{name}-{time.monotonic_ns()}.log"
        proc = _start(_worker_cmd(head, name), head.env, log)
        head.workers[name] = proc
        if wait_nodes(head, nodes, proc=proc):
            return
        if attempt == 1:
            pytest.fail(f"worker node {name} did not start: {log.read_text()[-2000:]}")


def _worker_cmd(head: Head, name: str) -> list[str]:
    """A worker node joining ``head``: 1 CPU and the custom resource ``name``."""
    return [
        _ray_bin(), "start", "--block", "--address", head.gcs_address,
        "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
        "--resources", json.dumps({name: 1}), *_node_ports(),
        # a disk of its own, as on a real machine: nodes sharing the head's temp dir would
        # also share (and garbage-collect) each other's unpacked job working directories
        "--temp-dir", str(head.tmp / name),
        "--object-store-memory", str(OBJECT_STORE_BYTES),
    ]  # fmt: skip


def kill_worker(head: Head, name: str, *, wait_dead: bool = True) -> None:
    """SIGKILL the worker node ``name`` (its raylet and trial workers), as a lost machine,
    and wait until the head has declared it dead: until then the head still lists it as
    alive, so a node started in its place would seem to have joined at once and a later
    test would meet the dead node (a task pinned to it is unschedulable)."""
    proc = head.workers.pop(name)
    for pid in _session_pids(proc.pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)
    if wait_dead:
        _wait_for(
            lambda: not any(name in n.get("resources_total", {}) for n in alive_nodes(head)),
            f"the head still lists worker node {name} as alive {START_TIMEOUT_S:g} s after its kill",
        )


def alive_nodes(head: Head) -> list[dict[str, object]]:
    """The alive nodes as the dashboard's state API lists them."""
    import urllib.request

    req = urllib.request.Request(
        f"{head.dashboard_url}/api/v0/nodes?limit=100",
        headers={"Authorization": f"Bearer {head.token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        rows = json.load(resp)["data"]["result"]["result"]
    return [r for r in rows if r.get("state") == "ALIVE"]


def wait_nodes(head: Head, n: int, *, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Wait for ``n`` alive nodes; False when ``proc`` (a starting node) exited first."""
    return _wait_for(
        lambda: len(alive_nodes(head)) == n,
        f"the cluster did not reach {n} alive nodes in {START_TIMEOUT_S:g} s",
        give_up=lambda: proc is not None and proc.poll() is not None,
    )


def _wait_for(
    ready: Callable[[], bool], failure: str, *, give_up: Callable[[], bool] = lambda: False
) -> bool:
    """Poll the dashboard's state API each second until ``ready()``: True; False as soon as
    ``give_up()``; a test failure saying ``failure`` after START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if give_up():
            return False
        with contextlib.suppress(OSError, KeyError, ValueError):
            if ready():
                return True
        time.sleep(1.0)
    pytest.fail(failure)


@pytest.fixture()
def ray_driver(ray_head: Head) -> Iterator[Head]:
    """This process connected to the head as a Ray driver; the tests' helper modules are
    importable in the workers (``PYTHONPATH``)."""
    import ray

    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    for attempt in range(3):  # a busy 2-core machine can be slow to accept the first driver
        try:
            ray.init(
                address=ray_head.gcs_address,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            break
        except ConnectionError:
            if attempt == 2:
                raise
            time.sleep(5.0)
    try:
        yield ray_head
    finally:
        ray.shutdown()
