"""``nas submit`` and ``nas jobs`` against the real local cluster with token auth: the CLI
round trip, the preflight, every shipped experiment as a job (through shared storage and
through the log), bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from nas_ray_helpers import analytical

from nas.jobs import (
    ARCHIVE_BEGIN,
    EXCLUDES,
    Shipment,
    fetch_job,
    job_client,
    job_status,
    submit_experiment,
)

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


def _nas(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_submit_wait_fetches_a_run_with_a_front(ray_head, tmp_path: Path) -> None:
    exp = tmp_path / "small.yaml"
    exp.write_text(yaml.safe_dump(analytical(trials=3, concurrency=2).model_dump(mode="json")))
    out = tmp_path / "fetched"
    env = {**ray_head.env, "RAY_ADDRESS": ray_head.dashboard_url}
    done = _nas("submit", str(exp), "--wait", "--out", str(out), "--timeout", "240", env=env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    job_id = done.stdout.splitlines()[0].strip()
    assert job_id.startswith("nas-ray-small-")
    assert "preflight: 3 nodes ready" in done.stdout
    assert "NAS-RUN-ARCHIVE" not in done.stdout  # the archive block is not printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "ray"
    assert summary["trials"] == 3
    assert summary["front_size"] >= 1
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) == summary["front_size"]
    for name in ("trials.parquet", "experiment.yaml", "references.parquet", "run.log"):
        assert (out / name).is_file()

    # the same job through `nas jobs` (address from the flag, token from the environment)
    flags = ["--address", ray_head.dashboard_url]
    status = _nas("jobs", "status", job_id, *flags, env=ray_head.env)
    assert status.stdout.startswith("SUCCEEDED"), status.stderr
    listed = _nas("jobs", "list", *flags, env=ray_head.env)
    assert job_id[:12] in listed.stdout
    logs = _nas("jobs", "logs", job_id, *flags, env=ray_head.env)
    assert f"run archive of {job_id} omitted" in logs.stdout
    again = _nas(
        "jobs", "fetch", job_id, *flags, "--out", str(tmp_path / "again"), env=ray_head.env
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "pareto.csv").read_text() == (out / "pareto.csv").read_text()
    _one_line_error(
        _nas("jobs", "fetch", "nas-no-such-job", *flags, env=ray_head.env), "nas-no-such-job"
    )


def test_preflight_names_the_missing_dependencies(ray_head, tmp_path: Path) -> None:
    """A project whose pyproject needs a package the cluster lacks: the job fails in the
    preflight, before the search, and `nas submit --wait` says so in one line."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(*EXCLUDES))
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('"numpy>=1.24",', '"numpy>=1.24", "hwnas-absent-dep>=1",')
    pyproject.write_text(text)
    exp = tmp_path / "small.yaml"
    exp.write_text(yaml.safe_dump(analytical(trials=2).model_dump(mode="json")))
    out = tmp_path / "out"
    done = _nas("submit", str(exp), "--project", str(project), "--wait", "--out", str(out),
                "--address", ray_head.dashboard_url, env=ray_head.env)  # fmt: skip
    line = _one_line_error(done, "cluster lacks hwnas's dependencies: hwnas-absent-dep", "--pip")
    assert "deploy/Dockerfile" in line
    assert "search" not in done.stdout.lower() or "trial" not in done.stdout  # no search ran
    assert not out.exists()


def test_every_experiment_as_a_job(ray_head, tmp_path: Path) -> None:
    """All shipped experiments submitted at once (2 trials each), each fetched back: every
    other one through a shared storage path (every local node sees /tmp), where Tune keeps
    its state and the job pushes the run; the others through the job log."""
    client = job_client(ray_head.dashboard_url, ray_head.token)
    store = tmp_path / "store"
    paths = sorted((ROOT / "experiments").glob("*.yaml"))
    jobs = {}
    for i, path in enumerate(paths):
        shipment = Shipment(storage=str(store) if i % 2 == 0 else None)
        jobs[path.stem] = (submit_experiment(client, path, project=ROOT, trials=2,
                                             shipment=shipment), shipment.storage)  # fmt: skip
    deadline = time.monotonic() + 600
    pending = {job_id for job_id, _ in jobs.values()}
    while pending and time.monotonic() < deadline:
        pending = {j for j in pending if job_status(client, j) not in ("SUCCEEDED", "FAILED")}
        time.sleep(2.0)
    for name, (job_id, storage) in jobs.items():
        status, log = job_status(client, job_id), client.get_job_logs(job_id)
        assert status == "SUCCEEDED", f"{name}: {status}\n{log[-3000:]}"
        if storage:
            assert (store / job_id / "tune").is_dir(), name  # RunConfig(storage_path=...)
            assert (store / job_id / "trials.parquet").is_file(), name
            assert f"run stored at {store}/{job_id}" in log and ARCHIVE_BEGIN not in log
        else:
            assert ARCHIVE_BEGIN in log and not (store / job_id).exists()
        run = fetch_job(client, job_id, tmp_path / name)  # storage from the job's metadata
        summary = json.loads((run / "summary.json").read_text())
        assert summary["backend"] == "ray" and summary["trials"] == 2, name
        trials = pd.read_parquet(run / "trials.parquet")
        assert (trials["state"] != "FAIL").all(), (name, trials["fail_reason"].tolist())
        assert trials["node_id"].str.len().gt(0).all(), name


def test_wrong_token_and_unreachable_address_are_one_line_exit_2(ray_head) -> None:
    env = {k: v for k, v in ray_head.env.items() if k != "RAY_AUTH_TOKEN"}
    done = _nas("jobs", "list", "--address", ray_head.dashboard_url, "--token", "wrong", env=env)
    _one_line_error(done)
    done = _nas("jobs", "list", "--address", "http://127.0.0.1:9", env=ray_head.env)
    _one_line_error(done, "127.0.0.1:9")


def test_the_given_address_wins_over_ray_address(ray_head, monkeypatch) -> None:
    """Ray's client takes RAY_ADDRESS over the address it is given; --address must reach the
    cluster it names (a dead port in the variable would refuse the connection), and the
    variable is back afterwards."""
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:1")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    client = job_client(ray_head.dashboard_url, ray_head.token)
    assert isinstance(client.list_jobs(), list)
    assert os.environ["RAY_ADDRESS"] == "http://127.0.0.1:1"
    assert "RAY_API_SERVER_ADDRESS" not in os.environ
