"""Issue 17 from the command line: damaged run files are named (and the listing survives
them), resume refuses a missing/empty/damaged study unless --force-restart, and absurd
flag values exit 2 with one line naming the flag or field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.nas_cli_helpers import nas

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "done"
    result = nas("run", QUICKSTART, "--trials", "4", "--out", str(out), "--quiet")
    assert result.code == 0, result.err
    return out


@pytest.fixture()
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(finished_run, root / "a")
    shutil.copytree(finished_run, root / "b")
    return root


def _one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "reason"), [("", "empty file"), ("[1]", "a JSON object expected, got list")]
)
def test_a_damaged_summary_is_named_and_the_listing_survives(
    run_copy: Path, content: str, reason: str
) -> None:
    (run_copy / "a" / "summary.json").write_text(content)
    listed = nas("runs", "list", "--root", str(run_copy))
    assert listed.code == 0, listed.err
    assert "damaged" in listed.out and reason in listed.out.replace("\n", "")
    assert "done" in listed.out  # run b is listed as usual
    shown = nas("runs", "show", str(run_copy / "a"))
    assert shown.code == 2 and reason in _one_error(shown.err)
    assert str(run_copy / "a" / "summary.json") in shown.err


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("trials", "abc", "trials: a whole number >= 0 expected, got 'abc'"),
        ("front_size", -3, "front_size: a whole number >= 0 expected, got -3"),
        ("hypervolume", "0.5", "hypervolume: a number expected, got '0.5'"),
        ("objectives", ["loss"], "objectives: a mapping expected"),
    ],
)
def test_a_summary_with_wrong_types_is_damaged_not_done(
    run_copy: Path, key: str, value: object, reason: str
) -> None:
    """A summary.json that parses but holds a wrong-typed value was listed as done."""
    path = run_copy / "a" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    listed = nas("runs", "list", "--root", str(run_copy), "--json")
    status = {Path(r["run_dir"]).name: r["status"] for r in json.loads(listed.out)}
    assert status == {"a": "damaged", "b": "done"}, listed.out
    shown = nas("runs", "show", str(run_copy / "a"))
    assert shown.code == 2 and _one_error(shown.err).startswith(f"error: {path}: damaged ({reason}")


def test_a_damaged_front_table_is_named(run_copy: Path) -> None:
    (run_copy / "a" / "pareto.csv").write_bytes(b'a,b\n"1,2\n\xff')
    shown = nas("runs", "show", str(run_copy / "a"))
    assert shown.code == 2 and "pareto.csv: damaged" in _one_error(shown.err)


@pytest.mark.parametrize("damage", ["missing", "empty", "damaged"])
def test_resume_refuses_a_bad_study_unless_forced(run_copy: Path, damage: str) -> None:
    run = run_copy / "a"
    db = run / "study.db"
    if damage == "missing":
        db.unlink()
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        data = bytearray(db.read_bytes())
        data[len(data) // 3 : len(data) // 3 + 4096] = b"\x55" * 4096
        db.write_bytes(bytes(data))
    for extra in run.glob("study.db-*"):
        extra.unlink()
    refused = nas("run", "--resume", str(run), "--quiet")
    line = _one_error(refused.err)
    assert (
        refused.code == 2
        and line.startswith(f"error: {db}: {damage}")
        and "--force-restart" in line
    )
    forced = nas("run", "--resume", str(run), "--quiet", "--force-restart")
    assert forced.code == 0, forced.err
    assert f"{db}: {damage}" in forced.err  # the restart says why
    assert len(pd.read_parquet(run / "trials.parquet")) == 4


def test_resume_keeps_finished_trials_and_force_restart_needs_resume(run_copy: Path) -> None:
    run = run_copy / "a"
    before = pd.read_parquet(run / "trials.parquet")
    more = nas("run", "--resume", str(run), "--trials", "6", "--quiet")
    assert more.code == 0, more.err
    after = pd.read_parquet(run / "trials.parquet")
    assert len(after) == 6 and after["number"].is_unique
    assert after.head(4)["number"].tolist() == before["number"].tolist()
    assert json.loads((run / "summary.json").read_text())["trials"] == 6
    bad = nas("run", QUICKSTART, "--force-restart")
    assert bad.code == 2 and "--force-restart: only with --resume" in _one_error(bad.err)


M = "llama3-8b"
HW = ("--hardware", "dgx-h100")
FLAG_CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("estimate-seq-len", ("estimate", M, *HW, "--seq-len", str(10**23)), "seq_len: "),
    ("estimate-tp-zero", ("estimate", M, *HW, "--tp", "0"), "tp: "),
    ("estimate-global-batch", ("estimate", M, *HW, "--global-batch", str(2**40)), "global_batch"),
    ("decode-gen-len", ("estimate", M, *HW, "--mode", "decode", "--gen-len", "1" + "0" * 20), "gen"),
    ("decode-batch", ("estimate", M, *HW, "--mode", "decode", "--batch", str(2**30)), "batch: "),
    ("loss-experts-zero", ("loss", "--params", "1e9", "--tokens", "1e12", "--num-experts", "0"), "--num-experts"),
    ("loss-tokens-tiny", ("loss", M, "--tokens", "1e-300"), "--tokens"),
    ("loss-tokens-inf", ("loss", M, "--tokens", "inf"), "--tokens"),
    ("loss-params-huge", ("loss", "--params", "1e30", "--tokens", "1e12"), "--params"),
    ("loss-granularity-inf", ("loss", "--params", "1e9", "--tokens", "1e12", "--num-experts", "8", "--granularity", "inf"), "--granularity"),
    ("proxy-width-inf", ("train-proxy", M, "--width-factor", "inf"), "--width-factor: "),
    ("proxy-lr-huge", ("train-proxy", M, "--lr", "1e9"), "--lr: "),
    ("proxy-seq-len-huge", ("train-proxy", M, "--seq-len", str(2**30)), "--seq-len: "),
    ("collective-bytes-huge", ("hw", "collective", "dgx-h100", "--op", "all-reduce", "--group", "8", "--bytes", "1e300"), "--bytes"),
    ("run-trials-huge", ("run", QUICKSTART, "--trials", str(10**12)), "search.trials"),
    ("run-seed-huge", ("run", QUICKSTART, "--seed", str(2**70)), "search.seed"),
    ("run-workers-zero", ("run", QUICKSTART, "--workers", "0"), "search.workers"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES]
)
def test_absurd_flags_exit_2_naming_the_flag(args: tuple[str, ...], expected: str) -> None:
    result = nas(*args)
    assert result.code == 2 and expected in _one_error(result.err), result.err


def test_a_non_utf8_experiment_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    result = nas("run", str(path))
    assert result.code == 2 and _one_error(result.err) == f"error: {path}: not UTF-8 text (byte 9)"


@pytest.mark.parametrize(
    "command",
    [
        ("models", "show", "{file}.yaml"),
        ("spaces", "show", "{file}.yaml"),
        ("hw", "show", "{file}.yaml"),
        ("estimate", "llama3-8b", "--hardware", "{file}.yaml"),
        ("spaces", "show", "dense_decoder", "--override", "{file}.yaml"),
        ("models", "show", "{file}/config.json"),
        ("fit-law", "{file}.json"),
    ],
)
@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"name: caf\xe9\n", "not UTF-8 text"), (b"[" * 30_000 + b"]" * 30_000, "nested")],
)
def test_every_file_reader_names_a_bad_file(
    tmp_path: Path, command: tuple[str, ...], content: bytes, expected: str
) -> None:
    base = tmp_path / "bad"
    base.mkdir()
    for path in (tmp_path / "bad.yaml", tmp_path / "bad.json", base / "config.json"):
        path.write_bytes(content)
    args = [a.format(file=base) for a in command]
    result = nas(*args)
    line = _one_error(result.err)
    assert result.code == 2 and expected in line and "bad" in line, line
