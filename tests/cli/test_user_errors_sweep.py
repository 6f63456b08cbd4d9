"""User mistakes found by a sweep of every ``nas`` command: each exits 2 with ONE ``error:``
line that names the field (house rule in README.md), never a traceback, a rich usage panel,
exit 1, or a silently ignored flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")
M = "llama3-8b"
HW = ("--hardware", "dgx-h100")
COLL = ("--op", "all-reduce", "--group", "8", "--bytes")

# (id, arguments, text the one error line must contain); "{tmp}" is a fresh empty folder.
CASES: list[tuple[str, tuple[str, ...], str]] = [
    # typer/click usage errors: one line, not the rich "Usage: ... Try --help" panel
    ("int-not-a-number", ("estimate", M, *HW, "--tp", "abc"), "--tp"),
    ("float-not-a-number", ("loss", M, "--tokens", "abc"), "--tokens"),
    ("bad-choice", ("estimate", M, *HW, "--mode", "serve"), "--mode"),
    ("missing-argument", ("estimate", *HW), "model"),
    ("missing-option", ("loss", M), "--tokens"),
    ("unknown-option", ("hw", "list", "--bogus"), "--bogus"),
    # click suggested --out for --bogus (the shared "--" made them "close")
    (
        "unknown-option-no-match",
        ("run", "--bogus", QUICKSTART),
        "no such option: --bogus; see python -m nas run --help",
    ),
    (
        "unknown-option-close",
        ("run", "--trial", "3", QUICKSTART),
        "no such option: --trial (did you mean --trials?); see python -m nas run --help",
    ),
    ("unknown-command", ("bogus",), "bogus"),
    ("run-neither", ("run",), "neither was given"),
    ("models-show-empty", ("models", "show", ""), "model: empty name"),
    ("headroom-not-rounded", ("estimate", M, *HW, "--memory-headroom", "1.0000001"), "1.0000001"),
    (
        "exhaustive-trials",
        ("run", str(ROOT / "experiments" / "exhaustive-dense.yaml"), "--trials", "5"),
        "--trials: the exhaustive backend",
    ),
    ("loss-neither", ("loss", "--tokens", "1e12"), "neither was given"),
    # a Ray address nothing answers on: one line at once (Ray retried for minutes)
    (
        "run-ray-unreachable",
        ("run", QUICKSTART, "--backend", "ray", "--address", "127.0.0.1:1", "--out", "{tmp}/r"),
        "--address 127.0.0.1:1: no Ray head answers there",
    ),
    # nas loss: tokens must be positive; flags of the other form are refused, not ignored
    ("loss-tokens-zero", ("loss", M, "--tokens", "0"), "--tokens"),
    ("loss-tokens-negative", ("loss", M, "--tokens", "-1"), "--tokens"),
    ("loss-tokens-nan", ("loss", M, "--tokens", "nan"), "--tokens"),
    ("loss-experts-with-model", ("loss", M, "--tokens", "1e12", "--num-experts", "8"), "--num-"),
    ("loss-top-k-with-model", ("loss", M, "--tokens", "1e12", "--top-k", "2"), "--top-k"),
    (
        "loss-shape-penalty-with-params",
        ("loss", "--params", "1e9", "--tokens", "1e12", "--shape-penalty"),
        "--shape-penalty",
    ),
    (
        "loss-negative-experts",
        ("loss", "--params", "1e9", "--tokens", "1e12", "--num-experts", "-8"),
        "--num-experts",
    ),
    (
        "loss-granularity-zero",
        ("loss", "--params", "1e9", "--tokens", "1e12", "--num-experts", "8", "--granularity", "0"),
        "granularity",
    ),
    # nas train-proxy: refused before any training or progress bar
    ("proxy-steps-zero", ("train-proxy", "gpt2-124m", "--steps", "0"), "--steps"),
    ("proxy-max-layers-zero", ("train-proxy", "gpt2-124m", "--max-layers", "0"), "--max-layers"),
    ("proxy-max-d-model-zero", ("train-proxy", "gpt2-124m", "--max-d-model", "0"), "--max-d"),
    ("proxy-data-missing", ("train-proxy", "gpt2-124m", "--data", "{tmp}/nope.txt"), "data"),
    ("proxy-data-empty-dir", ("train-proxy", "gpt2-124m", "--data", "{tmp}"), "data"),
    # nas estimate: serving flags in train mode and --seq-len in serving mode are refused
    ("estimate-weight-dtype-train", ("estimate", M, *HW, "--weight-dtype", "int4"), "--weight"),
    ("estimate-batch-train", ("estimate", M, *HW, "--batch", "4"), "--batch"),
    (
        "estimate-seq-len-decode",
        ("estimate", M, *HW, "--mode", "decode", "--seq-len", "8"),
        "--seq",
    ),
    # nas spaces sample: a huge -n and a negative --seed
    ("sample-huge-n", ("spaces", "sample", "dense_decoder", "-n", "100000000000"), "n:"),
    ("sample-negative-seed", ("spaces", "sample", "dense_decoder", "--seed", "-1"), "seed"),
    (
        "override-without-space-after-colon",
        ("spaces", "show", "dense_decoder", "--override", "{num_layers: [8, 16],d_model:3}"),
        "space after ':'",
    ),
    # nas submit / jobs: the experiment is checked before any cluster is contacted
    (
        "submit-missing-file",
        ("submit", "{tmp}/nope.yaml", "--address", "http://127.0.0.1:1"),
        "nope",
    ),
    (
        "submit-trials-zero",
        ("submit", QUICKSTART, "--address", "http://127.0.0.1:1", "--trials", "0"),
        "trials",
    ),
    (
        "submit-timeout-without-wait",
        ("submit", QUICKSTART, "--address", "http://127.0.0.1:1", "--timeout", "5"),
        "--timeout",
    ),
    ("jobs-address-not-a-url", ("jobs", "status", "x", "--address", "not a url"), "--address"),
    ("jobs-status-no-address", ("jobs", "status", "raysubmit_1"), "--address"),
    (
        "device-as-system",
        ("estimate", M, "--hardware", "h100-sxm"),
        "system: 'h100-sxm' is a device",
    ),
    # run directories, dashboards, collectives
    ("run-negative-seed", ("run", QUICKSTART, "--seed", "-1", "--out", "{tmp}/o"), "search.seed"),
    ("run-huge-workers", ("run", QUICKSTART, "--workers", "100000", "--out", "{tmp}/o"), "workers"),
    ("run-out-is-a-file", ("run", QUICKSTART, "--out", "{tmp}/file.txt"), "--out"),
    ("runs-list-root-is-a-file", ("runs", "list", "--root", "{tmp}/file.txt"), "--root"),
    ("runs-show-limit-zero", ("runs", "show", "{tmp}", "--limit", "0"), "--limit"),
    ("runs-show-not-a-run", ("runs", "show", "{tmp}/nope"), "no finished run"),
    ("dashboard-empty-dir", ("dashboard", "{tmp}"), "trials.parquet"),
    ("dashboard-port-without-serve", ("dashboard", "{tmp}", "--port", "9000"), "--port"),
    ("dashboard-port-out-of-range", ("dashboard", "{tmp}", "--serve", "--port", "-1"), "--port"),
    ("fit-law-too-few-rows", ("fit-law", "{tmp}/few.csv"), "rows"),
    ("fit-law-out-is-a-dir", ("fit-law", "{tmp}/few.csv", "--out", "{tmp}"), "--out"),
    ("profile-out-is-a-dir", ("hw", "profile", "--quick", "--out", "{tmp}"), "--out"),
    ("run-out-under-a-file", ("run", QUICKSTART, "--out", "{tmp}/file.txt/run"), "file.txt"),
    ("collective-bytes-negative", ("hw", "collective", "dgx-h100", *COLL, "-1"), "--bytes"),
    ("collective-bytes-inf", ("hw", "collective", "dgx-h100", *COLL, "inf"), "--bytes"),
]


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_mistake_exits_2_with_one_error_line(
    args: tuple[str, ...], field: str, tmp_path: Path
) -> None:
    (tmp_path / "file.txt").write_text("not a folder\n")
    (tmp_path / "few.csv").write_text("params,tokens,loss\n1e6,1e9,3.5\n2e6,1e9,3.3\n")
    if "--limit" in args:  # a finished run's two files (the limit is checked before reading)
        (tmp_path / "summary.json").write_text("{}")
        (tmp_path / "pareto.csv").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "nas", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)},
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert field in lines[0], lines[0]


def test_bare_group_prints_help_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nas", "hw"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "collective" in result.stdout and result.stderr == ""


def test_bad_objective_leaves_no_half_made_run_directory(tmp_path: Path) -> None:
    """The experiment is checked before the run directory exists, so fixing the YAML and
    running again with the same --out works (it used to say 'already holds a run')."""
    text = Path(QUICKSTART).read_text().replace("{loss: min,", "{losss: min,")
    assert "losss" in text
    experiment, out = tmp_path / "bad.yaml", tmp_path / "out"
    experiment.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "nas", "run", str(experiment), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "objectives.losss" in result.stderr, result.stderr
    assert not out.exists()


# (id, text replaced in quickstart.yaml -> replacement, field the error line must name)
EXPERIMENT_MISTAKES: list[tuple[str, tuple[str, str], str]] = [
    ("unknown-top-key", ("name: quickstart", "name: quickstart\nbogus: 1"), "bogus"),
    ("unknown-hardware-key", ("num_devices: 8}", "num_devices: 8, bogus: 1}"), "hardware.bogus"),
    ("unknown-knob", ("num_devices: 8}", "num_devices: 8, knobs: {fast: 2}}"), "knobs.fast"),
    ("unknown-search-key", ("seed: 0,", "seed: 0, bogus: 1,"), "search.bogus"),
    ("bad-constraint", ("fits: true}", "fits: true, params_total: '<<= 5'}"), "params_total"),
    (
        "serve-metric-in-train",
        ("params_total: min}", "decode_tpot_s: min}"),
        "objectives.decode_tpot_s: not a metric of the trial record of workload.mode train",
    ),
    ("wrong-mode", ("mode: train", "mode: inference"), "workload.mode"),
    ("storage-no-driver", ("seed: 0,", "seed: 0, storage: 'notadb://x',"), "search.storage"),
    (
        "objective-not-a-number",
        ("params_total: min}", "system: min}"),
        "objectives.system: not a number",
    ),
    ("storage-no-file", ("seed: 0,", "seed: 0, storage: 'sqlite:///',"), "search.storage"),
    (
        "storage-unwritable",
        ("seed: 0,", "seed: 0, storage: 'sqlite:////nonexistent/dir/x.db',"),
        "search.storage",
    ),
]


@pytest.mark.parametrize(
    ("edit", "field"), [c[1:] for c in EXPERIMENT_MISTAKES], ids=[c[0] for c in EXPERIMENT_MISTAKES]
)
def test_experiment_mistake_exits_2_naming_the_field(
    edit: tuple[str, str], field: str, tmp_path: Path
) -> None:
    text = Path(QUICKSTART).read_text()
    assert edit[0] in text
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(text.replace(edit[0], edit[1]))
    out = ("--out", str(tmp_path / "o"), "--quiet", "--trials", "2")
    result = subprocess.run(
        [sys.executable, "-m", "nas", "run", str(experiment), *out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert field in lines[0], lines[0]


def test_proxy_out_of_memory_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """torch's allocation failure (a huge --width-factor or --seq-len) used to be a traceback,
    exit 1; simulated here, since really allocating would be unsafe on a shared machine."""
    import nas.evaluators.proxy_train as proxy_train
    from nas.cli import main

    def no_memory(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 3e14")

    data = tmp_path / "corpus"  # 40 files: some land in the held-out split (by path hash)
    data.mkdir()
    for i in range(40):
        (data / f"f{i}.txt").write_text(f"file {i}: the quick brown fox jumps\n" * 200)
    monkeypatch.setattr(proxy_train._Run, "start", no_memory)
    argv = ["nas", "train-proxy", "gpt2-124m", "--steps", "1", "--data", str(data)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: --width-factor"), err
    assert "out of memory" in lines[0]


def test_run_whose_trials_all_fail_says_why(tmp_path: Path) -> None:
    """An MoE-only law on the dense quickstart space: every trial fails; the summary names
    the reason instead of only 'front 0'."""
    text = Path(QUICKSTART).read_text()
    old = "accuracy: {evaluator: scaling_law}"
    assert old in text
    experiment = tmp_path / "exp.yaml"
    new = "accuracy: {evaluator: scaling_law, settings: {law: krajewski2024}}"
    experiment.write_text(text.replace(old, new))
    out = ("--out", str(tmp_path / "o"), "--quiet", "--trials", "2")
    result = subprocess.run(
        [sys.executable, "-m", "nas", "run", str(experiment), *out],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "400", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "most common failure (2 of 2 trials)" in result.stdout, result.stdout
    assert "krajewski2024 covers MoE models only" in result.stdout


def test_an_out_path_through_a_file_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("mine\n")
    result = subprocess.run(
        [sys.executable, "-m", "nas", "hw", "profile", "--quick", "--out", str(blocker / "x.yaml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: --out {blocker / 'x.yaml'}: {blocker} is a file, not a folder"
    )
    assert blocker.read_text() == "mine\n"
