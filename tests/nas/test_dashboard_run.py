"""`nas run` writes the dashboard into its run directory (the real search driver, tiny run)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nas.dashboard import load_run, merge_runs
from nas.dashboard._panels import hypervolume_curves

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_nas_run_writes_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    cmd = [sys.executable, "-c", "from nas.cli import main; main()", "run"]
    args = [str(REPO / "experiments" / "quickstart.yaml"), "--trials", "12", "--out", str(out)]
    proc = subprocess.run([*cmd, *args, "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (out / "dashboard.html").read_text()
    assert int(re.search(r'nas-dashboard-figures" content="(\d+)"', page).group(1)) == 5  # type: ignore[union-attr]
    data = merge_runs([load_run(out)])
    # the search driver's front (pareto.csv) is the dashboard's front
    pareto = pd.read_csv(out / "pareto.csv")
    assert set(data.trials.loc[data.trials["on_front"], "trial"]) == set(pareto["number"])
    # one system: the last point of the hypervolume curve is the run's summary hypervolume
    _, histories = hypervolume_curves(data)
    summary = json.loads((out / "summary.json").read_text())
    assert histories["dgx-h100"].hv[-1] == pytest.approx(summary["hypervolume"], rel=1e-9)
    # references from the experiment are marked on the plot
    for name in ("llama3-8b", "gpt2-124m"):
        assert name in set(data.references["name"]) and name in page
