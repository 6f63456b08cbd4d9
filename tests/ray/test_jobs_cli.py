"""The run archive carried by a job log, and one-line errors of ``nas submit``/``nas jobs``
and the ray settings (no Ray cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from nas_ray_helpers import analytical

from nas.jobs import (
    ARCHIVE_BEGIN,
    EXCLUDES,
    JobsError,
    Shipment,
    entrypoint,
    fetch_from_log,
    pack_run,
    read_requirements,
    strip_archive,
)

ROOT = Path(__file__).resolve().parents[2]


def _run_dir(path: Path) -> Path:
    path.mkdir()
    (path / "experiment.yaml").write_text("name: x\n")
    (path / "pareto.csv").write_text("number,loss\n3,2.5\n")
    (path / "dashboard.html").write_text("<html>" + "x" * 10_000)
    (path / "tune").mkdir()
    (path / "tune" / "state.json").write_text("{}")
    return path


def test_archive_round_trip_through_a_log(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "run")
    log = "\n".join(["job output", *pack_run(run), "after"])
    out = fetch_from_log(log, tmp_path / "back")
    assert (out / "pareto.csv").read_text() == "number,loss\n3,2.5\n"
    assert (out / "experiment.yaml").is_file()
    assert not (out / "tune").exists()  # Tune's cluster-local state stays on the cluster
    shown = list(strip_archive(log.splitlines()))
    assert shown == ["job output", "[run archive of run omitted]", "after"]


def test_fetch_refuses_a_log_without_archive_and_a_used_out(tmp_path: Path) -> None:
    with pytest.raises(JobsError, match="no run archive"):
        fetch_from_log("just logs\n", tmp_path / "a")
    run = _run_dir(tmp_path / "run")
    cut = "\n".join(list(pack_run(run))[:-1])
    with pytest.raises(JobsError, match="cut short"):
        fetch_from_log(cut, tmp_path / "b")
    with pytest.raises(JobsError, match="not empty"):
        fetch_from_log("\n".join(pack_run(run)), run)
    assert ARCHIVE_BEGIN not in "\n".join(strip_archive(pack_run(run)))


def test_entrypoint_and_excludes() -> None:
    cmd = entrypoint(".nas-job/x.yaml", job_id="nas-x-1")
    assert cmd.startswith("python nas/jobs/preflight.py --client-ray ")
    assert " && python -m nas run .nas-job/x.yaml --backend ray --address auto" in cmd
    assert cmd.endswith(" && python -m nas jobs pack .nas-job/nas-x-1")
    stored = entrypoint(".nas-job/x.yaml", job_id="nas-x-1", storage="s3://b/p")
    assert "--storage s3://b/p" in stored.split(" && ")[0]  # the preflight checks it too
    assert stored.endswith("python -m nas jobs push .nas-job/nas-x-1 --storage s3://b/p")
    for name in (".venv*", ".git", "runs", "__pycache__", ".mypy_cache"):
        assert name in EXCLUDES


def test_runtime_env_of_pip_requirements_and_image(tmp_path: Path) -> None:
    req = tmp_path / "req.txt"
    req.write_text("# deps\ntyper>=0.12\n\nrich  # tables\n")
    pip = ("pydantic>=2.5", *read_requirements(req))
    env = Shipment(pip=pip).runtime_env(tmp_path)
    assert env == {"working_dir": str(tmp_path), "pip": ["pydantic>=2.5", "typer>=0.12", "rich"]}
    assert Shipment(image="hwnas:1").runtime_env(tmp_path)["image_uri"] == "hwnas:1"
    with pytest.raises(JobsError, match="--image"):
        Shipment(pip=("typer",), image="hwnas:1")
    with pytest.raises(JobsError, match="--requirements"):
        read_requirements(tmp_path / "missing.txt")


def _nas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**base, **(env or {})},
    )


def _one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_submit_without_address_is_one_line(tmp_path: Path) -> None:
    exp = tmp_path / "e.yaml"
    exp.write_text(yaml.safe_dump(analytical().model_dump(mode="json")))
    _one_line_error(_nas("submit", str(exp)), "--address", "RAY_ADDRESS")
    _one_line_error(
        _nas("jobs", "status", "x", "--address", "http://127.0.0.1:9"), "--address", "127.0.0.1:9"
    )


def test_bad_ray_settings_are_one_line(tmp_path: Path) -> None:
    exp = tmp_path / "e.yaml"
    data = analytical().model_dump(mode="json")
    data["search"]["ray"]["schedule"] = "asha"
    exp.write_text(yaml.safe_dump(data))
    _one_line_error(_nas("run", str(exp)), "search.ray.schedule", "allowed:", "scheduler")
    data["search"]["ray"] = {"scheduler": "asha"}
    exp.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    _one_line_error(_nas("run", str(exp), "--out", str(out)), "asha", "proxy_train")
    quickstart = str(ROOT / "experiments" / "quickstart.yaml")
    _one_line_error(_nas("run", quickstart, "--address", "auto"), "--backend ray")


def test_deploy_files_are_valid() -> None:
    from nas.evaluators import get_evaluator
    from nas.experiment import load_experiment

    exp = load_experiment(ROOT / "deploy" / "proxy-train-gpu.yaml")
    assert exp.search.backend == "ray" and exp.search.ray.gpus_per_trial == 1
    get_evaluator(exp.accuracy.evaluator, exp.accuracy.settings)  # settings are accepted
    job = yaml.safe_load((ROOT / "deploy" / "kuberay-rayjob.yaml").read_text())
    assert job["kind"] == "RayJob"
    assert "nas run deploy/proxy-train-gpu.yaml --backend ray --address auto" in job["spec"][
        "entrypoint"
    ].replace("\n", " ")
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert workers["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"] for e in workers["containers"][0]["env"]}
    assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= env
    cluster = yaml.safe_load((ROOT / "deploy" / "ray-cluster.yaml").read_text())
    assert cluster["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1


def test_damaged_tune_state_is_refused(tmp_path: Path) -> None:
    """A cut experiment state (JSON) and a cut or empty searcher state (a pickle, whatever its
    file name says) are refused in one line; whole files pass."""
    import pickle

    from nas.runs import RunError
    from nas.search.ray.backend import check_tune_state

    whole = pickle.dumps({"counter": 2, "finished": False}, protocol=5)
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": []}')
    (tmp_path / "search_gen_state-2026-01-01_00-00-00.json").write_bytes(whole)
    check_tune_state(tmp_path)  # intact
    (tmp_path / "experiment_state-2026-01-02_00-00-00.json").write_text('{"trial_da')  # cut
    with pytest.raises(RunError, match=r"experiment_state-2026-01-02.*damaged"):
        check_tune_state(tmp_path)
    (tmp_path / "experiment_state-2026-01-02_00-00-00.json").unlink()
    for cut in (b"", whole[: len(whole) // 2]):  # killed before or while writing
        (tmp_path / "search_gen_state-2026-01-02_00-00-00.json").write_bytes(cut)
        with pytest.raises(RunError, match=r"search_gen_state-2026-01-02.*damaged"):
            check_tune_state(tmp_path)


def test_bad_storage_and_environment_flags_are_one_line(tmp_path: Path) -> None:
    quickstart = str(ROOT / "experiments" / "quickstart.yaml")
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "run"
    bad = str(tmp_path / "file" / "store")
    done = _nas("run", quickstart, "--backend", "ray", "--storage", bad, "--out", str(out))
    _one_line_error(done, f"--storage {bad}: cannot write there")
    assert not out.exists()  # refused before the run directory is made
    _one_line_error(_nas("run", quickstart, "--storage", "s3://b/p"), "--backend ray")
    submit = ["submit", quickstart, "--address", "http://127.0.0.1:9"]
    _one_line_error(_nas(*submit, "--storage", bad), "--storage", "cannot write")  # before Ray
    _one_line_error(_nas(*submit, "--requirements", str(tmp_path / "no.txt")), "--requirements")
    _one_line_error(_nas(*submit, "--image", "hwnas:1", "--pip", "typer"), "--image")


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_run_round_trip_through_storage(scheme: str, tmp_path: Path) -> None:
    from nas.jobs.storage import check_writable, pull_run, push_run

    run = _run_dir(tmp_path / "nas-x-1")
    uri = f"{scheme}{tmp_path / 'store'}"
    check_writable(uri)
    assert push_run(run, uri).endswith("/store/nas-x-1")
    assert not (tmp_path / "store" / "nas-x-1" / "tune").exists()  # Tune writes its own there
    out = pull_run(uri, "nas-x-1", tmp_path / "back")
    assert sorted(p.name for p in out.iterdir()) == ["experiment.yaml", "pareto.csv"]
    with pytest.raises(JobsError, match="no run there"):
        pull_run(uri, "nas-missing", tmp_path / "none")
    assert not (tmp_path / "none").exists()
