"""Run directories: files, summary, resume after SIGKILL (with the toy problem)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas.experiment import experiment_from_dict
from nas.runs import RunError, list_runs, resume_run, start_run, summarise
from nas.search.base import Objective
from nas.search.toy import ToyProblem

TOY: dict[str, Any] = {
    "name": "toy",
    "space": "dense_decoder",
    "hardware": {"system": "dgx-h100"},
    "workload": {"mode": "train", "seq_len": 4096, "global_batch_tokens": 4194304, "tokens": 1e12},
    "objectives": {"f1": "min", "f2": "min"},
    "search": {"trials": 20, "seed": 1},
}


def test_run_directory_holds_every_file(tmp_path: Path) -> None:
    exp = experiment_from_dict(TOY)
    result = start_run(exp, out=tmp_path / "run", problem_factory=lambda: ToyProblem(fail_every=6))
    d = result.run_dir
    for name in (
        "experiment.yaml",
        "study.db",
        "trials.parquet",
        "pareto.csv",
        "summary.json",
        "run.log",
    ):
        assert (d / name).is_file(), name
    trials = pd.read_parquet(d / "trials.parquet")
    assert len(trials) == 20 and {"number", "state", "duration_s", "param_x", "f1"} <= set(
        trials.columns
    )
    summary = json.loads((d / "summary.json").read_text())
    assert summary["failed"] == 3 and summary["complete"] == 17
    front = pd.read_csv(d / "pareto.csv")
    assert len(front) == summary["front_size"] > 0
    assert summary["best"]["f1"]["value"] == trials["f1"].min()
    with pytest.raises(RunError, match="already holds a run"):
        start_run(exp, out=d, problem_factory=ToyProblem)
    assert list_runs(tmp_path)[0]["run_dir"] == str(d)


def test_summary_hypervolume_uses_normalised_reference() -> None:
    frame = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["COMPLETE"] * 3,
            "feasible": [True, True, True],
            "a": [0.0, 1.0, 1.0],
            "b": [1.0, 0.0, 1.0],
        }
    )
    s = summarise(
        frame, [Objective(metric="a", direction="min"), Objective(metric="b", direction="min")]
    )
    # normalised points (0,1) and (1,0), reference (1.1, 1.1): 1.1*0.1 + 0.1*1.1 - 0.1*0.1
    assert s["front_size"] == 2
    assert s["hypervolume"] == pytest.approx(0.21)


_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nas.experiment import experiment_from_dict
    from nas.runs import resume_run, start_run
    from nas.search.toy import ToyProblem
    import json
    exp = experiment_from_dict(json.loads(sys.argv[2]))
    factory = lambda: ToyProblem(delay_s=0.05)
    if sys.argv[1] == "start":
        start_run(exp, out=Path(sys.argv[3]), problem_factory=factory)
    else:
        resume_run(Path(sys.argv[3]), problem_factory=factory)
    """
)


def _completed(run_dir: Path) -> int:
    log = run_dir / "run.log"
    return log.read_text().count("trial COMPLETE") if log.is_file() else 0


@pytest.mark.slow
def test_sigkill_then_resume_keeps_every_completed_trial(tmp_path: Path) -> None:
    exp = json.dumps({**TOY, "search": {"trials": 40, "seed": 0}})
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, "start", exp, str(run_dir)])
    deadline = time.time() + 60
    while _completed(run_dir) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    import optuna

    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{run_dir / 'study.db'}")
    before = {t.number: t.params for t in study.get_trials() if t.state.name == "COMPLETE"}
    assert len(before) >= 8
    assert not (run_dir / "summary.json").exists()
    subprocess.run([sys.executable, "-c", _SCRIPT, "resume", exp, str(run_dir)], check=True)
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert trials["number"].is_unique
    after = trials.set_index("number")
    for number, params in before.items():
        assert after.loc[number, "state"] == "COMPLETE"
        assert after.loc[number, "param_x"] == params["x"]
    counted = trials[~trials["fail_reason"].str.startswith("interrupted")]
    assert len(counted) == 40
    assert (counted["state"] == "COMPLETE").all()


def test_resume_of_a_finished_run_adds_trials(tmp_path: Path) -> None:
    exp = experiment_from_dict({**TOY, "search": {"trials": 6}})
    start_run(exp, out=tmp_path / "r", problem_factory=ToyProblem)
    result = resume_run(tmp_path / "r", trials=9, problem_factory=ToyProblem)
    assert sorted(result.trials["number"]) == list(range(9))
    with pytest.raises(RunError, match="not a run directory"):
        resume_run(tmp_path / "nothing")


def _trial_count(run_dir: Path) -> int:
    import optuna

    try:
        study = optuna.load_study(study_name="toy", storage=f"sqlite:///{run_dir / 'study.db'}")
    except KeyError:  # the database exists, the study is not created yet
        return 0
    return len(study.get_trials(deepcopy=False))


@pytest.mark.slow
def test_sigkill_with_workers_leaves_no_orphans_and_resumes(tmp_path: Path) -> None:
    exp = json.dumps(
        {**TOY, "search": {"trials": 60, "seed": 0, "workers": 2, "sampler": "random"}}
    )
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, "start", exp, str(run_dir)])
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if _completed(run_dir) >= 10:  # read the log: opening the db now would race its creation
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    count = _trial_count(run_dir)
    time.sleep(1.0)
    assert _trial_count(run_dir) == count  # the workers died with the run process
    subprocess.run([sys.executable, "-c", _SCRIPT, "resume", exp, str(run_dir)], check=True)
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert trials["number"].is_unique
    counted = trials[~trials["fail_reason"].str.startswith("interrupted")]
    assert len(counted) == 60 and (counted["state"] == "COMPLETE").all()


def test_same_seed_same_trials_on_the_quickstart(tmp_path: Path) -> None:
    from nas.experiment import load_experiment
    from nas.runs import with_overrides

    exp = with_overrides(
        load_experiment(Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"),
        trials=8,
    )
    exp = exp.model_copy(update={"references": []})
    a = start_run(exp, out=tmp_path / "a").trials
    b = start_run(exp, out=tmp_path / "b").trials
    cols = [c for c in a.columns if c.startswith("param_")] + ["loss", "step_time_s"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_finished_trials_of_a_ray_run_come_from_its_log(tmp_path: Path) -> None:
    """``nas run --resume`` starts the progress bar at the trials a Ray run already finished
    (the Tune callback logs one line per finished trial; retries log nothing)."""
    from nas.experiment import dump_experiment
    from nas.runs import finished_trials

    exp = experiment_from_dict(
        {
            "name": "r",
            "space": "dense_decoder",
            "hardware": {"system": "dgx-h100", "num_devices": 8},
            "workload": {"mode": "train", "seq_len": 2048, "global_batch_tokens": 1048576,
                         "tokens": 1e10},
            "objectives": {"loss": "min"},
            "search": {"backend": "ray", "trials": 6},
        }
    )  # fmt: skip
    (tmp_path / "experiment.yaml").write_text(dump_experiment(exp))
    assert finished_trials(tmp_path) == 0  # no log yet
    (tmp_path / "run.log").write_text(
        "2026-11-25 10:00:00,001 INFO start\n"
        "2026-11-25 10:00:01,002 INFO trial COMPLETE [2.1] \n"
        "2026-11-25 10:00:02,003 INFO trial FAIL [] worker died after its retries\n"
        "2026-11-25 10:00:03,004 INFO trial PRUNED [] pruned: asha\n"
        "2026-11-25 10:00:04,005 INFO trial COMPLETE [2.0] \n"
    )
    assert finished_trials(tmp_path) == 4


def test_a_run_being_written_lists_as_running_not_unfinished(tmp_path: Path) -> None:
    from nas.rundir import run_lock

    d = tmp_path / "r"
    d.mkdir()
    (d / "experiment.yaml").write_text("name: r\n")
    assert list_runs(tmp_path)[0]["status"] == "unfinished"
    with run_lock(d):
        entry = list_runs(tmp_path)[0]
        assert entry["status"] == "running" and entry["holder"].startswith(f"pid {os.getpid()}")
    assert list_runs(tmp_path)[0]["status"] == "unfinished"


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "pareto.csv").write_text("my results\n")
    with pytest.raises(
        RunError, match=r"--out .*mine: folder is not empty and holds no run \(pareto\.csv\)"
    ):
        start_run(experiment_from_dict(TOY), out=out, problem_factory=ToyProblem)
    assert (out / "pareto.csv").read_text() == "my results\n"
    assert sorted(p.name for p in out.iterdir()) == ["pareto.csv"]


def test_an_interrupted_resume_lists_as_unfinished_not_done(tmp_path: Path) -> None:
    d = start_run(experiment_from_dict(TOY), out=tmp_path / "r", problem_factory=ToyProblem).run_dir
    assert list_runs(tmp_path)[0]["status"] == "done"

    def interrupt(outcome: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resume_run(d, trials=30, problem_factory=ToyProblem, progress=interrupt)
    assert list_runs(tmp_path)[0]["status"] == "unfinished"
    assert json.loads((d / "summary.previous.json").read_text())["trials"] == 20
    finished = resume_run(d, trials=30, problem_factory=ToyProblem)
    assert finished.summary["trials"] == 30 and list_runs(tmp_path)[0]["status"] == "done"


def test_a_new_run_does_not_adopt_another_runs_study_on_a_shared_storage(tmp_path: Path) -> None:
    shared = {**TOY, "search": {**TOY["search"], "storage": f"sqlite:///{tmp_path / 'ext.db'}"}}
    first = start_run(experiment_from_dict(shared), out=tmp_path / "a", problem_factory=ToyProblem)
    assert first.summary["trials"] == 20
    with pytest.raises(Exception, match=r"search\.storage: .* already holds a study named 'toy'"):
        start_run(experiment_from_dict(shared), out=tmp_path / "b", problem_factory=ToyProblem)
    assert not (tmp_path / "b").exists()
    renamed = experiment_from_dict({**shared, "name": "toy2"})
    second = start_run(renamed, out=tmp_path / "b", problem_factory=ToyProblem)
    assert second.summary["trials"] == 20


def test_a_ray_resume_refuses_a_new_trial_count(tmp_path: Path) -> None:
    """Tune's restore keeps its num_samples: --trials 115 on a 500-trial run ran to 500."""
    from nas.experiment import dump_experiment

    exp = experiment_from_dict({**TOY, "search": {**TOY["search"], "backend": "ray"}})
    d = tmp_path / "r"
    d.mkdir()
    (d / "experiment.yaml").write_text(dump_experiment(exp))
    with pytest.raises(RunError, match=r"--trials: a ray run resumes to its own 20 trials"):
        resume_run(d, trials=115, problem_factory=ToyProblem)
