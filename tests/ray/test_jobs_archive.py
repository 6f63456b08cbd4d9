"""``nas jobs fetch`` against hostile or damaged run archives (issue 17): each problem is one
line with exit 2 and nothing is left behind, neither at ``--out`` nor as a temporary
directory next to it. A fake Jobs client serves the log, so no cluster is needed."""

from __future__ import annotations

import base64
import gzip
import io
import random
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nas.jobs
from nas.jobs import ARCHIVE_BEGIN, ARCHIVE_END, JobsError, fetch_from_log, pack_run


def _log_of(payload: bytes) -> str:
    text = base64.b64encode(payload).decode("ascii")
    body = [text[i : i + 76] for i in range(0, len(text), 76)]
    return "\n".join(["job output", f"{ARCHIVE_BEGIN} run", *body, ARCHIVE_END, ""])


def _tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, *, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, b""


def _real_run(tmp_path: Path) -> bytes:
    run = tmp_path / "src"
    run.mkdir()
    (run / "experiment.yaml").write_text("name: x\n")
    (run / "trials.csv").write_text("n\n" + "1\n" * 20_000)
    lines = list(pack_run(run))[1:-1]
    return base64.b64decode("".join(lines))


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


CASES: dict[str, Any] = {
    "dot-dot member": (
        lambda _: _tar_gz(_file("experiment.yaml"), _file("../evil.txt")),
        "'../evil.txt' points outside the run",
    ),
    "absolute member": (
        lambda _: _tar_gz(_file("experiment.yaml"), _file("/tmp/evil.txt")),
        "points outside the run",
    ),
    "symlink member": (
        lambda _: _tar_gz(_file("experiment.yaml"), _special("x", tarfile.SYMTYPE, link="/etc")),
        "'x' is a link",
    ),
    "device member": (
        lambda _: _tar_gz(_file("experiment.yaml"), _special("dev", tarfile.CHRTYPE)),
        "'dev' is a special file",
    ),
    "not gzip": (lambda _: b"PK\x03\x04 a zip, not a tar.gz" * 10, "not gzip data"),
    "gzip, not tar": (lambda _: gzip.compress(b"hello " * 200), "not a complete tar"),
    "no run inside": (lambda _: _tar_gz(_file("notes.txt")), "no experiment.yaml"),
    "truncated in the middle": (lambda p: _half(_real_run(p)), "truncated"),
    "truncated in the trailer": (lambda p: _real_run(p)[:-4], "gzip"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_archive_is_refused_and_leaves_nothing(case: str, tmp_path: Path) -> None:
    make, needle = CASES[case]
    out = tmp_path / "dest" / "run"
    with pytest.raises(JobsError, match="run archive") as info:
        fetch_from_log(_log_of(make(tmp_path)), out)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()
    assert list((tmp_path / "dest").iterdir()) == []  # no half-extracted temporary directory
    assert not (tmp_path / "evil.txt").exists()


def test_a_good_archive_lands_whole_into_an_empty_out(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    fetch_from_log(_log_of(_real_run(tmp_path)), out)
    assert (out / "experiment.yaml").read_text() == "name: x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "src"]


def test_pack_refuses_a_run_over_the_log_cap(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.yaml").write_text("name: x\n")
    (run / "big.bin").write_bytes(random.Random(0).randbytes(300_000))  # incompressible
    with pytest.raises(JobsError, match=r"0.3 MiB, over the 0.1 MiB a job log carries; submit "):
        list(pack_run(run, cap_bytes=100_000))


@dataclass
class _FakeClient:
    log: str
    metadata: dict[str, str] = field(default_factory=dict)

    def get_job_info(self, job_id: str) -> Any:
        return type("Info", (), {"metadata": self.metadata})()

    def get_job_logs(self, job_id: str) -> str:
        return self.log


def test_jobs_fetch_cli_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.cli import main

    evil = _tar_gz(_file("experiment.yaml"), _file("../../evil.txt"))
    monkeypatch.setattr(nas.jobs, "job_client", lambda *a: _FakeClient(_log_of(evil)))
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["nas", "jobs", "fetch", "nas-x-1", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: run archive: member '../../evil.txt'")
    assert not out.exists() and list(tmp_path.iterdir()) == []
