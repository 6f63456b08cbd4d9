"""The CLI in scripts: --version, --json on list/show commands, full-width piped tables,
"N more" notes, missing folders, defaults in help, bugs reported as bugs, --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nas import __version__
from nas.experiment import experiment_from_dict
from nas.runs import start_run
from nas.search.toy import ToyProblem

ROOT = Path(__file__).resolve().parents[2]


def _nas(*args: str, cwd: Path = ROOT, columns: str | None = None) -> Any:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**env, "PYTHONPATH": str(ROOT)},
    )


def test_version_flag() -> None:
    result = _nas("--version")
    assert result.returncode == 0 and result.stdout.strip() == __version__


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("hw", "list"), "max_devices"),
        (("hw", "devices"), "memory_bytes"),
        (("models", "list"), "params_total"),
        (("spaces", "list"), "candidates"),
        (("models", "list"), "num_layers"),
    ],
)
def test_list_commands_print_json(args: tuple[str, ...], key: str) -> None:
    result = _nas(*args, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) > 1 and all(isinstance(r[key], (int, float)) for r in rows)


def test_spaces_show_json() -> None:
    result = _nas("spaces", "show", "dense_decoder", "--json")
    data = json.loads(result.stdout)
    assert data["candidates"] > 1 and data["parameters"][0]["parameter"] == "num_layers"


def test_piped_tables_are_not_cut_at_80_columns() -> None:
    result = _nas("hw", "list")  # stdout is a pipe here
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "cloudmatrix-384" in line]
    assert len(rows) == 1 and "196 GB/s" in rows[0] and len(rows[0]) > 80
    assert "\x1b[" not in result.stdout  # plain: no colour codes


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exp = experiment_from_dict(
        {
            "name": "toy",
            "space": "dense_decoder",
            "hardware": {"system": "dgx-h100"},
            "workload": {
                "mode": "train",
                "seq_len": 4096,
                "global_batch_tokens": 4194304,
                "tokens": 1e12,
            },
            "objectives": {"f1": "min", "f2": "min"},
            "search": {"trials": 40, "seed": 1, "sampler": "random"},
        }
    )
    out = tmp_path_factory.mktemp("runs") / "toy-1"
    return start_run(exp, out=out, problem_factory=ToyProblem).run_dir


def test_runs_show_json_and_more_note(toy_run: Path) -> None:
    shown = _nas("runs", "show", str(toy_run), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    front = data["front"]
    assert len(front) == data["summary"]["front_size"] > 2
    cut = _nas("runs", "show", str(toy_run), "--limit", "2")
    assert f"... {len(front) - 2} more front rows" in cut.stdout


def test_runs_list_json_and_missing_root_the_same_either_way(toy_run: Path, tmp_path: Path) -> None:
    listed = json.loads(_nas("runs", "list", "--root", str(toy_run.parent), "--json").stdout)
    assert [Path(r["run_dir"]).name for r in listed] == ["toy-1"]
    default = _nas("runs", "list", cwd=tmp_path)  # ./runs absent
    given = _nas("runs", "list", "--root", str(tmp_path / "runs"), cwd=tmp_path)
    assert default.returncode == given.returncode == 0
    assert "does not exist yet" in default.stdout and "does not exist yet" in given.stdout
    assert json.loads(_nas("runs", "list", "--json", cwd=tmp_path).stdout) == []


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("runs", "list"), "[default: runs]"),
        (("estimate",), "[default: (4096)]"),
        (("submit",), "[default: ($RAY_ADDRESS)]"),
    ],
)
def test_help_shows_defaults(args: tuple[str, ...], shown: str) -> None:
    result = _nas(*args, "--help", columns="200")
    assert shown in result.stdout and " . " not in result.stdout


def test_a_bug_is_reported_as_a_bug_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nas.cli as cli
    from nas.cli import _common

    def broken() -> None:
        raise KeyError("boom")

    cli.app.command("broken-for-test")(broken)
    try:
        monkeypatch.setattr(sys, "argv", ["nas", "broken-for-test"])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        err = capsys.readouterr().err
        assert exit_info.value.code == 1
        assert err.startswith("internal error (a bug in nas") and "KeyError" in err
        assert "Traceback" not in err
        monkeypatch.setattr(sys, "argv", ["nas", "--debug", "broken-for-test"])
        with pytest.raises(KeyError, match="boom"):
            cli.main()
    finally:
        cli.app.registered_commands.pop()
        _common.set_debug(False)


@pytest.mark.parametrize("command", [("estimate",), ("run",), ("hw", "collective")])
def test_piped_help_cuts_no_flag_or_value(command: tuple[str, ...]) -> None:
    """rich cut piped help at 80 columns ("--sequence-par…", "deepspeed-infere…")."""
    done = _nas(*command, "--help")
    assert done.returncode == 0
    assert "…" not in done.stdout
    assert "--sequence-parallel" in done.stdout or command != ("estimate",)


@pytest.mark.parametrize("variable", ["COLUMNS", "TERMINAL_WIDTH"])
@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e3"])
def test_a_width_that_is_not_a_positive_number_is_ignored(variable: str, value: str) -> None:
    """TERMINAL_WIDTH=abc crashed at import (typer reads it with int()) and 0 or -5 printed no
    help; like COLUMNS, such a value is ignored: piped help at its usual 120 columns."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "PYTHONPATH": str(ROOT), variable: value}
    done = subprocess.run(
        [sys.executable, "-m", "nas", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "nas [OPTIONS] COMMAND" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) == 120


@pytest.mark.parametrize("content", ["", "garbage\n"])
def test_runs_show_names_a_damaged_front_file(toy_run: Path, tmp_path: Path, content: str) -> None:
    """An empty or garbage pareto.csv printed an empty front beside "front N"."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(toy_run, copy)
    (copy / "pareto.csv").write_text(content)
    shown = _nas("runs", "show", str(copy))
    assert shown.returncode == 2
    assert f"{copy / 'pareto.csv'}: damaged (0 readable front rows" in shown.stderr
