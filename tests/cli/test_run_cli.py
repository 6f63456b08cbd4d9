"""``nas run`` and ``nas runs list|show`` end to end (real cost models and evaluator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


def _nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args], capture_output=True, text=True, cwd=ROOT, timeout=170
    )


@pytest.mark.slow
def test_quickstart_runs_and_writes_the_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    result = _nas("run", str(QUICKSTART), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 60 and summary["front_size"] > 1
    trials = pd.read_parquet(out / "trials.parquet")
    for column in (
        "loss",
        "params_total",
        "step_time_s",
        "time_compute_s",
        "memory_weights_bytes",
        "plan_tp",
        "param_num_layers",
        "tokens",
        "mfu",
    ):
        assert column in trials.columns, column
    ok = trials[trials["state"] == "COMPLETE"]
    # a fixed GPU-hour budget: tokens seen = budget x per-device throughput
    assert (ok["gpu_hours"] - 2000).abs().max() < 1e-6
    refs = pd.read_parquet(out / "references.parquet")
    assert {"llama3-8b", "gpt2-124m"} <= set(refs["name"])
    assert (refs["fail_reason"] == "").all()
    shown = _nas("runs", "show", str(out))
    assert shown.returncode == 0 and "Pareto front" in shown.stdout
    listed = _nas("runs", "list", "--root", str(tmp_path))
    assert "qs" in listed.stdout
    # resume with more trials keeps the first 60
    more = _nas("run", "--resume", str(out), "--trials", "64", "--quiet")
    assert more.returncode == 0, more.stderr
    again = pd.read_parquet(out / "trials.parquet")
    assert len(again) == 64 and again["number"].is_unique
    pd.testing.assert_series_equal(
        again.set_index("number").loc[range(60), "loss"],
        trials.set_index("number")["loss"],
    )


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICKSTART.read_text().replace("sampler: nsga2", "sampler: cmaes"))
    result = _nas("run", str(bad), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.sampler" in lines[0] and "nsga2" in lines[0]
    other = _nas("run", str(QUICKSTART), "--backend", "hyperopt", "--out", str(tmp_path / "r2"))
    assert other.returncode == 2 and "search.backend" in other.stderr and "'ray'" in other.stderr
    missing = _nas("run", "--resume", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "not a run directory" in missing.stderr


@pytest.mark.slow
def test_the_bar_ends_at_the_summary_hypervolume_before_its_scale_freezes(tmp_path: Path) -> None:
    """proxy-train fixes its scale from the first feasible trials; a 2-trial run ends before
    the bar's live scale does, and the bar's last figure is still summary.json's."""
    out = tmp_path / "pt"
    done = subprocess.run(
        [sys.executable, "-m", "nas", "run", str(ROOT / "experiments" / "proxy-train.yaml"),
         "--trials", "2", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=170,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    bar = [line for line in done.stdout.splitlines() if line.startswith("search")][-1]
    assert f"hv {summary['hypervolume']:.4f}" in bar
