"""Safe access to a run directory: one writer at a time, whole files or none, named damage.

* :func:`run_lock` — an exclusive lock per run directory. ``run.lock`` holds the owner's pid
  and host; the lock itself is an ``fcntl.flock`` on that file, which the kernel drops when
  the owner dies (even by SIGKILL), so a lock left by a dead process is taken over (with a
  notice naming it) while a live holder makes a second writer fail with one line.
  The file is never deleted (deleting it would let two processes lock two different files).
* :func:`atomic_write` / :func:`atomic_write_text` — a results file is written to a temp file
  in the same directory and renamed over the old one (``os.replace`` is atomic on POSIX), so
  a reader or a crash sees the old file or the new one, never half of one.
* :func:`read_json_object` — a results file that is empty, truncated or not an object is
  a :class:`RunFileError` naming the file, which a listing shows instead of failing;
  :func:`read_summary` also checks the types of ``summary.json``'s values.
* :func:`study_problem` / :func:`set_aside_study` — resume reads the finished trials from the
  study file; a missing, empty or damaged one is refused (re-running every trial silently
  would look like a resume), unless the user asks for a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nas.jsonsafe import json_safe

__all__ = [
    "LOCK_NAME",
    "RunFileError",
    "RunLocked",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "list_runs",
    "lock_holder",
    "read_json_object",
    "read_summary",
    "restart_study",
    "resume_study_problem",
    "run_lock",
    "set_aside_study",
    "study_file",
    "study_problem",
    "write_parquet",
]

LOCK_NAME = "run.lock"


class RunLocked(ValueError):
    """Another live process writes to this run directory; one line naming it."""


class RunFileError(ValueError):
    """A damaged results file; one line naming it."""


def _holder(text: str) -> dict[str, Any]:
    """The owner recorded in a lock file (empty when none or unreadable)."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run directory's lock (``pid N on HOST``), or None when it is free."""
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(_holder(path.read_text(errors="replace")))
    finally:
        os.close(fd)
    return None


@contextlib.contextmanager
def run_lock(run_dir: Path, *, notice: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the run directory's lock for the ``with`` block; :class:`RunLocked` if a live
    process holds it. ``notice`` receives one line when a dead owner's lock is taken over."""
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(Path(path).read_text(errors="replace"))
            raise RunLocked(
                f"{run_dir}: in use by {_describe(holder)} (lock {path}); wait for it to "
                "finish or stop it first"
            ) from None
        previous = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
        if previous and notice is not None:
            notice(f"{run_dir}: taking over the lock left by {_describe(previous)} (not running)")
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released cleanly: nothing left to take over
    finally:
        os.close(fd)  # closing drops the flock


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temp file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results files are ordinary files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and a rename."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, non-finite numbers as null (never ``NaN``, which strict
    JSON readers refuse), through a temp file and a rename."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False))


def write_parquet(frame: Any, path: Path) -> None:
    """``frame.to_parquet(path)`` without the index (for :func:`atomic_write`)."""
    frame.to_parquet(path, index=False)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; empty, damaged, non-UTF-8 or non-object files raise
    :class:`RunFileError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: damaged (not UTF-8 text)") from None
    if not text.strip():
        raise RunFileError(f"{path}: damaged (empty file)")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = f"{exc.msg}, line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        detail = f": {reason}" if reason else ""
        raise RunFileError(f"{path}: damaged (not valid JSON{detail})") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: damaged (a JSON object expected, got {type(data).__name__})")
    return data


# summary.json's counts (nas.run_results.summarise); any other type there is damage
_SUMMARY_COUNTS = ("trials", "complete", "failed", "pruned", "feasible", "front_size",
                   "candidates_evaluated", "replanned_rows")  # fmt: skip


def read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` as :func:`read_json_object` reads it, its values checked: a
    :class:`RunFileError` naming the file when a count is not a whole number >= 0 (or
    ``trials`` is missing), the hypervolume not a number or null, ``name`` / ``backend``
    not text, ``objectives`` / ``best`` not mappings (``"trials": "abc"`` was listed done)."""
    data = read_json_object(path)
    problem = _summary_problem(data)
    if problem is not None:
        raise RunFileError(f"{path}: damaged ({problem})")
    return data


def _summary_problem(data: dict[str, Any]) -> str | None:
    if "trials" not in data:
        return "no trials count"
    for key in _SUMMARY_COUNTS:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key}: a whole number >= 0 expected, got {value!r:.40}"
    hv = data.get("hypervolume")
    if hv is not None and (isinstance(hv, bool) or not isinstance(hv, (int, float))):
        return f"hypervolume: a number expected, got {hv!r:.40}"
    expected = {"name": str, "backend": str, "objectives": dict, "best": dict}
    for key, kind in expected.items():
        if key in data and not isinstance(data[key], kind):
            what = "text" if kind is str else "a mapping"
            return f"{key}: {what} expected, got {data[key]!r:.40}"
    return None


def study_file(run_dir: Path, storage: str) -> Path | None:
    """The study file of a run kept in its directory (None for an RDB URL)."""
    if storage == "sqlite":
        return Path(run_dir) / "study.db"
    if storage == "journal":
        return Path(run_dir) / "study.log"
    return None


def study_problem(run_dir: Path, *, storage: str, study_name: str) -> str | None:
    """One line naming the study file when it cannot be resumed from, else None."""
    path = study_file(run_dir, storage)
    if path is None:
        return None
    if not path.is_file():
        return f"{path}: missing"
    if path.stat().st_size == 0:
        return f"{path}: empty"
    if storage == "journal":
        return _journal_problem(path)
    return _sqlite_problem(path, study_name)


def _sqlite_problem(path: Path, study_name: str) -> str | None:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        return f"{path}: cannot be opened ({exc})"
    try:
        check = con.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            return f"{path}: damaged (sqlite quick_check: {check[0][0]})"
        names = {row[0] for row in con.execute("SELECT study_name FROM studies")}
    except sqlite3.Error as exc:
        return f"{path}: damaged ({exc})"
    finally:
        con.close()
    if study_name not in names:
        return f"{path}: holds no study named {study_name!r}"
    return None


def _journal_problem(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return f"{path}: damaged (not UTF-8 text)"
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            return f"{path}: damaged (line {number} is not a journal entry)"
    return None


def set_aside_study(path: Path) -> Path | None:
    """Rename a damaged study file (and SQLite's -wal/-shm companions) to ``*.damaged``
    so a restart begins with a fresh one; returns the new name (None when there was none)."""
    moved = None
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            target = _free_name(part.with_name(part.name + ".damaged"))
            os.replace(part, target)
            moved = moved or target
    return moved


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, ...: an earlier set-aside file is never replaced."""
    out, n = path, 0
    while out.exists():
        n += 1
        out = path.with_name(f"{path.name}.{n}")
    return out


def resume_study_problem(
    run_dir: Path, *, backend: str, storage: str, study_name: str
) -> str | None:
    """Why a run cannot resume from its study (None when it can). Only the optuna backend
    keeps its finished trials in a study file of the run (ray: Tune's state; exhaustive:
    nothing to resume from)."""
    if backend != "optuna":
        return None
    return study_problem(run_dir, storage=storage, study_name=study_name)


def refusal(problem: str) -> str:
    """The one-line refusal of a resume from a bad study."""
    return f"{problem}; its finished trials cannot be read (add --force-restart to run every trial again)"


def restart_study(
    run_dir: Path, problem: str, *, storage: str, force: bool, notice: Callable[[str], None]
) -> None:
    """Refuse (:class:`RunFileError`) unless ``force``; then set a damaged study file aside
    and say so through ``notice``."""
    if not force:
        raise RunFileError(refusal(problem))
    path = study_file(run_dir, storage)
    moved = set_aside_study(path) if path is not None else None
    notice(f"{problem}; restarting every trial" + (f" (old file: {moved})" if moved else ""))


def list_runs(root: Path = Path("runs")) -> list[dict[str, Any]]:
    """One entry per run directory under ``root`` (newest first). A damaged ``summary.json``
    gives its run the status ``damaged`` and a ``problem`` line naming the file; the other
    runs are listed as usual. A run whose lock a live search holds is ``running`` (with
    ``holder``, ``pid N on HOST``); one without a summary and without a holder is
    ``unfinished`` (interrupted: ``nas run --resume`` continues it)."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir(), key=_mtime, reverse=True):
        if not (d / "experiment.yaml").is_file():
            continue
        summary_path = d / "summary.json"
        entry: dict[str, Any] = {"run_dir": str(d), "status": "unfinished"}
        if summary_path.is_file():
            try:
                entry.update({**read_summary(summary_path), "status": "done"})
            except (RunFileError, OSError) as exc:
                entry.update({"status": "damaged", "problem": str(exc)})
        holder = _holder_or_none(d)
        if holder is not None:  # a search writes it now (a first run or a resume)
            entry.update({"status": "running", "holder": holder})
        out.append(entry)
    return out


def _holder_or_none(run_dir: Path) -> str | None:
    try:
        return lock_holder(run_dir)
    except OSError:  # an unreadable lock file: say nothing rather than fail the listing
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed while listing
        return 0.0
