"""``nas submit`` and ``nas jobs`` against a real local Ray head with token auth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from nas_ray_helpers import analytical

pytestmark = pytest.mark.ray


def _nas(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_submit_wait_fetches_a_run_with_a_front(ray_head, tmp_path: Path) -> None:
    exp = tmp_path / "small.yaml"
    exp.write_text(yaml.safe_dump(analytical(trials=3, concurrency=2).model_dump(mode="json")))
    out = tmp_path / "fetched"
    env = {**ray_head.env, "RAY_ADDRESS": ray_head.dashboard_url}
    done = _nas("submit", str(exp), "--wait", "--out", str(out), "--timeout", "240", env=env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    job_id = done.stdout.splitlines()[0].strip()
    assert job_id.startswith("raysubmit_")
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
    assert "run archive of run omitted" in logs.stdout
    again = _nas(
        "jobs", "fetch", job_id, *flags, "--out", str(tmp_path / "again"), env=ray_head.env
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "pareto.csv").read_text() == (out / "pareto.csv").read_text()


def test_wrong_token_is_one_line_exit_2(ray_head) -> None:
    env = {k: v for k, v in ray_head.env.items() if k != "RAY_AUTH_TOKEN"}
    done = _nas("jobs", "list", "--address", ray_head.dashboard_url, "--token", "wrong", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
