"""The job's first step: does every node of the cluster have what ``hwnas`` needs?

Run as a script (``python nas/jobs/preflight.py``) from the shipped project, before the
search starts. It imports only the standard library and ``ray``, so it works where the
project's dependencies are missing, which is what it reports. On the driver and on every
alive node (a zero-CPU task pinned to the node) it checks:

* Python against ``requires-python`` of the shipped ``pyproject.toml``;
* every distribution of ``project.dependencies`` and of the ``ray`` extra is installed
  (``importlib.metadata``; versions are not compared, pip's resolver did that);
* ``ray`` on the cluster against the client's (a different minor version is reported, as
  Ray asks client and cluster to match) and the import of ``nas`` resolving to the shipped
  copy (its ``hwnas`` version), not an older install;
* with ``--storage``, that the storage can be written from the cluster.

A problem is one line on stderr (``error: cluster lacks hwnas's dependencies: ...``), exit 2.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import importlib.util
import logging
import os
import re
import sys
from typing import Any

HINT = "pass --pip PKG / --requirements FILE to nas submit, or build deploy/Dockerfile"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirements(pyproject: dict[str, Any]) -> list[str]:
    """Distribution names the project needs on the cluster (dependencies + the ray extra)."""
    project = pyproject["project"]
    reqs = [*project.get("dependencies", []), *project.get("optional-dependencies", {})["ray"]]
    return [m.group(1) for r in reqs if (m := _NAME.match(r))]


def min_python(pyproject: dict[str, Any]) -> tuple[int, ...]:
    """The lower bound of ``requires-python`` (``>=3.10`` -> (3, 10))."""
    found = re.search(r">=\s*([0-9.]+)", pyproject["project"].get("requires-python", ""))
    return tuple(int(x) for x in found.group(1).split(".")) if found else (3,)


def node_problems(needed: list[str], python: tuple[int, ...], root: str) -> list[str]:
    """What this process's Python lacks (empty: all good)."""
    problems = []
    if sys.version_info[: len(python)] < python:
        want = ".".join(map(str, python))
        problems.append(f"Python {sys.version.split()[0]} (hwnas needs >= {want})")
    missing = []
    for name in needed:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        problems.append("cluster lacks hwnas's dependencies: " + ", ".join(missing))
    spec = importlib.util.find_spec("nas")
    origin = os.path.realpath(spec.origin) if spec and spec.origin else "nothing"
    if not origin.startswith(os.path.realpath(root) + os.sep):
        problems.append(f"`import nas` loads {origin}, not the shipped project")
    return problems


def _check_on(pyproject: dict[str, Any]) -> tuple[str, list[str]]:
    """Runs on a node: its working directory is that node's copy of the shipped project."""
    import ray

    problems = node_problems(requirements(pyproject), min_python(pyproject), os.getcwd())
    return ray.__version__, problems


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [n for n in nodes if n.get("Alive")]


def _where(node: dict[str, Any]) -> str:
    return f"node {node['NodeManagerAddress']} {node['NodeID'][:8]}"


def _nodes_report(pyproject: dict[str, Any]) -> tuple[int, list[str]]:
    """(nodes checked, problems found on them, each naming its node). A node that leaves the
    cluster while it is checked (its raylet declared dead: a lost machine, or one the head
    had not yet noticed was gone) is skipped with a note; the search runs on the others."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0)(_check_on)
    alive = _alive_nodes()
    refs = [
        task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(pyproject)
        for n in alive
    ]
    lines: list[str] = []
    checked = 0
    for node, ref in zip(alive, refs, strict=True):
        try:
            version, problems = ray.get(ref, timeout=300)
        except ray.exceptions.RayError as exc:
            still = {n["NodeID"] for n in _alive_nodes()}
            if node["NodeID"] not in still:
                print(f"note: {_where(node)} left the cluster during the preflight", flush=True)
                continue
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            lines.append(f"preflight check failed on {_where(node)}: {first}")
            continue
        checked += 1
        lines.extend(f"{p} ({_where(node)})" for p in problems)
        if version != ray.__version__:
            lines.append(f"ray {version} on {_where(node)} but {ray.__version__} on the head")
    return checked, lines


def _storage_problem(uri: str) -> str | None:
    sys.path.insert(0, os.getcwd())
    from nas.jobs.client import JobsError  # the dependencies are there by now
    from nas.jobs.storage import check_writable

    try:
        check_writable(uri)
    except JobsError as exc:
        return str(exc)
    return None


def _load_pyproject(root: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


def _problems(root: str, storage: str | None) -> tuple[int, list[str]]:
    """(alive nodes, problems): the driver first, then every node, then the storage."""
    import ray

    pyproject = _load_pyproject(root)
    lines = [
        f"{p} (driver)" for p in node_problems(requirements(pyproject), min_python(pyproject), root)
    ]
    ray.init(address="auto", logging_level=logging.WARNING, log_to_driver=False)
    try:
        nodes = len(_alive_nodes())
        if not lines:
            nodes, lines = _nodes_report(pyproject)
    finally:
        ray.shutdown()
    if not lines and storage:
        problem = _storage_problem(storage)
        lines = [f"{problem} (from the cluster)"] if problem else []
    return nodes, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hwnas preflight on a Ray cluster")
    parser.add_argument("--client-ray", required=True, help="ray version of the submitting client")
    parser.add_argument("--storage", default=None, help="run storage URI to check")
    args = parser.parse_args(argv)
    import ray

    if ray.__version__.split(".")[:2] != args.client_ray.split(".")[:2]:
        print(f"note: cluster ray {ray.__version__}, client ray {args.client_ray}", flush=True)
    try:
        nodes, lines = _problems(os.getcwd(), args.storage)
    except ImportError as exc:  # no tomllib/tomli on Python 3.10
        lines, nodes = [f"cluster lacks hwnas's dependencies: {exc.name}"], 0
    if lines:
        hint = f"; {HINT}" if "lacks" in lines[0] else ""
        print(f"error: {lines[0]}{hint}", file=sys.stderr, flush=True)
        return 2
    print(
        f"preflight: {nodes} nodes ready (ray {ray.__version__}, "
        f"Python {sys.version.split()[0]}, hwnas from {os.getcwd()})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
