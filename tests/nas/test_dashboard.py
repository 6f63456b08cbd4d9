"""The dashboard file: data loading, panels, self-containment, CLI and --serve."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nas.cli import app
from nas.dashboard import DashboardError, build_dashboard, load_run, merge_runs, write_dashboard
from nas.dashboard._data import (
    breakdown_columns,
    breakdown_families,
    param_columns,
    plan_columns,
)
from nas.dashboard._panels import hypervolume_curves
from nas.dashboard._serve import make_server
from nas.dashboard.synthetic import write_synthetic_run
from nas.search.pareto import hypervolume, non_dominated, normalise

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _figure_count(text: str) -> int:
    match = re.search(r'<meta name="nas-dashboard-figures" content="(\d+)">', text)
    assert match
    return int(match.group(1))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_run(tmp_path_factory.mktemp("runs") / "synth", n_trials=300, seed=1)


def test_columns_discovered_by_prefix(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert [o.name for o in run.objectives] == ["loss", "step_time_s"]
    params = param_columns(run.trials)
    assert list(params)[:4] == ["num_layers", "d_model", "num_heads", "num_kv_heads"]
    assert params["top_k"] == "param_top_k"
    assert set(plan_columns(run.trials)) == {"tp", "pp", "dp", "ep", "cp"}
    assert set(breakdown_columns(run.trials, "time")) == {
        "compute", "tp_comm", "pp_bubble", "pp_comm", "dp_comm", "ep_comm", "cp_comm", "other",
    }  # fmt: skip
    # memory_per_device_bytes is the total, not a part
    assert set(breakdown_columns(run.trials, "memory")) == {
        "weights", "gradients", "optimizer", "activations", "other",
    }  # fmt: skip
    assert len(run.trials) == 299  # the FAIL trial is dropped
    assert list(run.references["name"]) == ["llama3-8b", "mixtral-8x7b"]


def test_front_is_feasible_and_non_dominated(run_dir: Path) -> None:
    data = merge_runs([load_run(run_dir)])
    t = data.trials
    ok = t[t["feasible"]]
    expect = non_dominated(ok[["loss", "step_time_s"]].to_numpy())
    assert set(t.index[t["on_front"]]) == set(ok.index[expect])
    assert not t.loc[t["on_front"], "feasible"].eq(False).any()


def test_objectives_fall_back_to_experiment_yaml(tmp_path: Path) -> None:
    d = write_synthetic_run(tmp_path / "r", n_trials=40, objectives=("loss", "tokens_per_s"))
    (d / "summary.json").unlink()
    run = load_run(d)
    assert [(o.name, o.direction) for o in run.objectives] == [
        ("loss", "min"),
        ("tokens_per_s", "max"),
    ]


def test_final_hypervolume_matches_exact(run_dir: Path) -> None:
    data = merge_runs([load_run(run_dir)])
    _, hists = hypervolume_curves(data)
    ok = data.trials[data.trials["feasible"]][["loss", "step_time_s"]].to_numpy()
    scaled = normalise(ok, ideal=ok.min(axis=0), nadir=ok.max(axis=0))
    expect = hypervolume(scaled, np.full(2, 1.1))
    assert hists[data.groups[0]].hv[-1] == pytest.approx(expect, rel=1e-12)


def test_page_is_self_contained(run_dir: Path, tmp_path: Path) -> None:
    out = write_dashboard(run_dir, tmp_path / "d.html")
    text = out.read_text()
    assert "plotly.js v" in text[:20000]  # the library itself is inlined, not linked
    # markup outside scripts (plotly.js holds URL strings it never loads unless a map is drawn)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not EXTERNAL.search(markup), EXTERNAL.search(markup)
    assert text.count("<script src") == 0
    assert "@import" not in text and "<link" not in text
    # 2-D front, parallel coordinates, hypervolume, time and memory breakdowns
    assert _figure_count(text) == 5
    assert text.count('id="front-table"') == 1
    axis = json.loads(re.search(r'id="axis-data">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    assert axis["options"][:2] == ["loss", "step_time_s"]
    assert "llama3-8b" in text and "mixtral-8x7b" in text


def test_write_dashboard_defaults_into_run_dir(run_dir: Path) -> None:
    assert write_dashboard(run_dir) == run_dir / "dashboard.html"
    assert (run_dir / "dashboard.html").stat().st_size > 1_000_000


def test_systems_and_three_objectives(tmp_path: Path) -> None:
    d = write_synthetic_run(
        tmp_path / "multi",
        n_trials=200,
        systems=("dgx-h100", "atlas-800t-a2"),
        objectives=("loss", "step_time_s", "decode_tpot_s"),
    )
    data = merge_runs([load_run(d)])
    assert data.groups == ["dgx-h100", "atlas-800t-a2"]
    for group in data.groups:  # a front per system
        assert data.trials.loc[data.trials["group"] == group, "on_front"].any()
    text = build_dashboard([d], tmp_path / "m.html").read_text()
    # + per-system fronts and the 3-D view
    assert _figure_count(text) == 7
    assert 'id="systems"' in text and 'id="pareto3d"' in text


def test_two_runs_of_one_system_are_told_apart(tmp_path: Path) -> None:
    a = write_synthetic_run(tmp_path / "a", n_trials=60, seed=1)
    b = write_synthetic_run(tmp_path / "b", n_trials=60, seed=2)
    data = merge_runs([load_run(a), load_run(b)])
    assert data.groups == ["a", "b"]
    assert len(data.trials) == 118


def test_missing_objective_column_is_one_line_error(tmp_path: Path) -> None:
    d = write_synthetic_run(tmp_path / "bad", n_trials=20)
    pd.read_parquet(d / "trials.parquet").drop(columns=["loss"]).to_parquet(d / "trials.parquet")
    with pytest.raises(DashboardError, match=r"trials.parquet: objective column\(s\) \['loss'\]"):
        load_run(d)


def test_cli_builds_and_reports(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(app, ["dashboard", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert _figure_count(out.read_text()) == 5


def test_cli_compares_runs(tmp_path: Path) -> None:
    a = write_synthetic_run(tmp_path / "a", n_trials=40, systems=("dgx-h100",), seed=1)
    b = write_synthetic_run(tmp_path / "b", n_trials=40, systems=("atlas-800t-a2",), seed=2)
    out = tmp_path / "cmp.html"
    result = CliRunner().invoke(app, ["dashboard", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert 'id="systems"' in text  # one front per system on shared axes
    assert "dgx-h100 (" in text and "atlas-800t-a2 (" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/run"], "error: /nonexistent/run: not a run directory"),
        (["RUN", "--serve", "--port", "70000"], "error: --port 70000: must be between 0 and 65535"),
    ],
)
def test_cli_user_errors_exit_2(run_dir: Path, args: list[str], message: str) -> None:
    import subprocess
    import sys

    args = [str(run_dir) if a == "RUN" else a for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", "from nas.cli import main; main()", "dashboard", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_serve_on_loopback_only(run_dir: Path) -> None:
    page = write_dashboard(run_dir)
    server = make_server(page, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            body = resp.read()
        assert resp.status == 200 and body == page.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def test_breakdown_families_for_serving() -> None:
    frame = pd.DataFrame(
        {
            "time_compute_s": [0.0, 0.0],  # all zero: left out
            "prefill_time_compute_s": [1.0, 2.0],
            "prefill_time_tp_comm_s": [0.1, 0.2],
            "decode_time_memory_s": [0.01, 0.02],
            "step_time_s": [1.0, 2.0],  # a total, not a part
            "memory_weights_bytes": [1e9, 2e9],
            "memory_kv_cache_bytes": [3e9, 1e9],
            "memory_per_device_bytes": [4e9, 3e9],
            "device_memory_bytes": [8e10, 8e10],
        }
    )
    assert breakdown_families(frame, "time") == {
        "prefill": {"compute": "prefill_time_compute_s", "tp_comm": "prefill_time_tp_comm_s"},
        "decode": {"memory": "decode_time_memory_s"},
    }
    assert breakdown_families(frame, "memory") == {
        "": {"weights": "memory_weights_bytes", "kv_cache": "memory_kv_cache_bytes"}
    }


def test_cli_serve_prints_url_and_stops_on_ctrl_c(run_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    code = "from nas.cli import main; main()"
    cmd = [sys.executable, "-u", "-c", code, "dashboard", str(run_dir), "--serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("wrote ")
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        with urllib.request.urlopen(match.group(0), timeout=10) as resp:
            assert b"nas-dashboard-figures" in resp.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("case", ["all_failed", "one_objective", "nan_no_refs", "none_feasible"])
def test_degenerate_runs_still_build(tmp_path: Path, case: str) -> None:
    objectives = ("loss",) if case == "one_objective" else ("loss", "step_time_s")
    d = write_synthetic_run(tmp_path / case, n_trials=40, objectives=objectives)
    trials = pd.read_parquet(d / "trials.parquet")
    if case == "all_failed":
        trials["state"] = "FAIL"
    elif case == "nan_no_refs":
        trials.loc[:10, "loss"] = np.nan
        (d / "references.parquet").unlink()
    elif case == "none_feasible":
        trials["feasible"] = False
    trials.to_parquet(d / "trials.parquet")
    text = write_dashboard(d).read_text()
    assert _figure_count(text) >= 3
    data = merge_runs([load_run(d)])
    if case in ("all_failed", "none_feasible"):
        assert not data.trials["on_front"].any()
    if case == "all_failed":
        assert "no completed trials yet" in text
    if case == "nan_no_refs":  # rows with a NaN objective are never on the front
        assert not data.trials.loc[data.trials["loss"].isna(), "on_front"].any()
