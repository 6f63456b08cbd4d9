"""The ray backend against a real local Ray head (see conftest.py): retries and ASHA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import yaml
from nas_ray_helpers import CrashOnceProblem, analytical, proxy

from nas.runs import start_run

pytestmark = pytest.mark.ray


def test_worker_crash_is_retried_and_every_trial_completes(ray_driver, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    exp = analytical(trials=3, concurrency=2, max_failures=1)
    factory = partial(CrashOnceProblem, exp, str(markers))
    result = start_run(exp, out=tmp_path / "run", problem_factory=factory)
    frame = result.trials
    assert len(frame) == 3
    assert (frame["state"] == "COMPLETE").all(), frame[["state", "fail_reason"]]
    # every candidate's first attempt killed its worker: one marker and one retry each
    assert len(list(markers.iterdir())) == 3
    assert (frame["retries"] == 1).all()
    assert result.summary["front_size"] >= 1
    for name in ("trials.parquet", "pareto.csv", "summary.json", "experiment.yaml"):
        assert (tmp_path / "run" / name).is_file()


def test_without_retries_a_crash_fails_only_its_trial(ray_driver, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    exp = analytical(trials=2, concurrency=2, max_failures=0)
    factory = partial(CrashOnceProblem, exp, str(markers))
    frame = start_run(exp, out=tmp_path / "run", problem_factory=factory).trials
    assert list(frame["state"]) == ["FAIL", "FAIL"]
    assert frame["fail_reason"].str.len().gt(0).all()


def _steps_spent(frame: pd.DataFrame) -> int:
    """Training steps each trial really ran (a stopped trial: its last reported step)."""
    return int(frame["steps"].fillna(0).astype(int).sum())


def test_asha_stops_poor_proxy_trials_early(ray_driver, tmp_path: Path) -> None:
    common = {"trials": 8, "steps": 40, "concurrency": 1}
    full = start_run(proxy(**common), out=tmp_path / "full").trials
    asha = start_run(
        proxy(**common, scheduler="asha", grace_steps=10, reduction_factor=2),
        out=tmp_path / "asha",
    ).trials
    full_steps, asha_steps = _steps_spent(full), _steps_spent(asha)
    print(
        f"\ntraining steps: {full_steps} without a scheduler, {asha_steps} with ASHA "
        f"({(asha['state'] == 'PRUNED').sum()} of {len(asha)} trials stopped early)"
    )
    assert (full["state"] == "COMPLETE").all()
    assert full_steps == 8 * 40
    # the same seeded sampler proposes the same candidates with and without the scheduler
    params = [c for c in full.columns if c.startswith("param_")]
    assert full[params].equals(asha[params])
    assert (asha["state"] == "PRUNED").any()
    assert asha_steps < full_steps
    stopped = asha[asha["state"] == "PRUNED"]
    assert stopped["fail_reason"].str.startswith("stopped by ASHA").all()
    assert (asha["state"] == "COMPLETE").any()  # the best trials still train to the end


def _kill_after_two_trials(head, exp: Path, run_dir: Path, env: dict[str, str]) -> int:
    """Start ``nas run`` (with its progress bar, Tune's state in a storage path), SIGKILL it
    after two finished trials; returns the trials finished by then."""
    cmd = [sys.executable, "-m", "nas", "run", str(exp), "--out", str(run_dir)]
    store = ["--storage", str(run_dir.parent / "store")]
    proc = subprocess.Popen(
        [*cmd, "--address", head.gcs_address, *store], env=env, stdout=subprocess.DEVNULL
    )
    log = run_dir / "run.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and log.read_text().count("trial COMPLETE") >= 2:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed"
    return log.read_text().count("trial COMPLETE")


def test_killed_run_is_restored_and_finishes(ray_head, tmp_path: Path) -> None:
    """SIGKILL the driver after two finished trials; ``nas run --resume`` restores the Tuner
    from ``--storage``, NSGA-II sampler included.

    Tune copies its state into the run directory while the run goes on; a kill during that
    copy leaves it damaged and ``--resume`` refuses it with one line (``check_tune_state``):
    then the scenario is tried once more."""
    exp = tmp_path / "small.yaml"
    # seconds a trial: killed mid-run; NSGA-II: its sampler is rebuilt on restore
    slow = proxy(trials=6, steps=150, concurrency=1, sampler="nsga2", population_size=2)
    exp.write_text(yaml.safe_dump(slow.model_dump(mode="json")))
    env = {**ray_head.env, "TUNE_GLOBAL_CHECKPOINT_S": "0"}  # save state every step
    for attempt in range(2):
        run_dir = tmp_path / f"run{attempt}"
        before = _kill_after_two_trials(ray_head, exp, run_dir, env)
        done = subprocess.run(
            [sys.executable, "-m", "nas", "run", "--resume", str(run_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if done.returncode == 2 and "state is damaged" in done.stderr:
            print(f"\nattempt {attempt}: {done.stderr.strip()}")
            continue
        break
    assert done.returncode == 0, done.stderr[-3000:]
    assert "/6 " in done.stdout  # the progress bar ran (and was kept out of Tune's pickles)
    summary = json.loads((run_dir / "summary.json").read_text())
    log = (run_dir / "run.log").read_text()
    assert summary["trials"] == 6, log + done.stderr[-3000:]
    assert summary["complete"] == 6
    assert (tmp_path / "store" / run_dir.name / "tune").is_dir()  # restored from the storage
    after = log.count("trial COMPLETE") - before
    print(f"\n{before} trials finished before the kill, {after} after the restore")
    assert after < 6  # finished trials were kept, not run again
