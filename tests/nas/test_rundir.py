"""Run-directory safety (issue 17): the lock, atomic writes, damaged files named, resume
refusing a missing, empty or damaged study."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from nas.rundir import (
    LOCK_NAME,
    RunFileError,
    RunLocked,
    atomic_write_text,
    lock_holder,
    read_json_object,
    run_lock,
    set_aside_study,
    study_problem,
)


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with run_lock(tmp_path):
        assert lock_holder(tmp_path) == f"pid {os.getpid()} on {os.uname().nodename}"
        with (
            pytest.raises(RunLocked, match=rf"in use by pid {os.getpid()} on "),
            run_lock(tmp_path),
        ):
            pass
    assert lock_holder(tmp_path) is None
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly: nothing to take over
    with run_lock(tmp_path):  # free again
        pass


def test_lock_of_a_dead_owner_is_taken_over_with_a_notice(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 4_000_000, "host": "gone"}))
    notices: list[str] = []
    with run_lock(tmp_path, notice=notices.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert notices == [
        f"{tmp_path}: taking over the lock left by pid 4000000 on gone (not running)"
    ]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_text(target, '{"a": 1}')

    def broken(tmp: Path) -> None:
        tmp.write_text('{"a": ')
        raise OSError("disk full")

    from nas.rundir import atomic_write

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert read_json_object(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"[1]", "a JSON object expected, got list"),
        (b'{"trials": ', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_damaged_json_is_named(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "summary.json"
    path.write_bytes(content)
    with pytest.raises(RunFileError) as info:
        read_json_object(path)
    assert str(info.value).startswith(f"{path}: damaged (") and reason in str(info.value)


def _study_db(path: Path, name: str = "exp") -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    con.execute("CREATE TABLE filler (x BLOB)")
    con.execute("INSERT INTO studies (study_name) VALUES (?)", (name,))
    con.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(900),) for _ in range(200)])
    con.commit()
    con.close()


def test_study_problems_name_the_file(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    assert study_problem(tmp_path, storage="sqlite", study_name="exp") == f"{db}: missing"
    db.write_bytes(b"")
    assert study_problem(tmp_path, storage="sqlite", study_name="exp") == f"{db}: empty"
    db.unlink()
    _study_db(db)
    assert study_problem(tmp_path, storage="sqlite", study_name="exp") is None
    assert "holds no study named 'other'" in str(
        study_problem(tmp_path, storage="sqlite", study_name="other")
    )
    data = bytearray(db.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8192] = b"\x55" * 8192  # damaged mid-file
    db.write_bytes(bytes(data))
    problem = study_problem(tmp_path, storage="sqlite", study_name="exp")
    assert problem is not None and problem.startswith(f"{db}: damaged")
    moved = set_aside_study(db)
    assert moved == tmp_path / "study.db.damaged" and not db.exists()
    assert study_problem(tmp_path, storage="postgresql://h/db", study_name="exp") is None


def test_journal_study_problems(tmp_path: Path) -> None:
    log = tmp_path / "study.log"
    assert study_problem(tmp_path, storage="journal", study_name="x") == f"{log}: missing"
    log.write_text('{"op_code": 0}\n{"op_co')
    assert study_problem(tmp_path, storage="journal", study_name="x") == (
        f"{log}: damaged (line 2 is not a journal entry)"
    )


def test_a_second_set_aside_keeps_the_first(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    db.write_text("garbage 1")
    assert set_aside_study(db) == tmp_path / "study.db.damaged"
    db.write_text("garbage 2")
    assert set_aside_study(db) == tmp_path / "study.db.damaged.1"
    assert (tmp_path / "study.db.damaged").read_text() == "garbage 1"
    assert (tmp_path / "study.db.damaged.1").read_text() == "garbage 2"
