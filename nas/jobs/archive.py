"""A run directory carried through a job's log (for clusters without shared storage).

``nas jobs pack RUN_DIR`` (the job's last step) prints the run directory, without
``dashboard.html`` and Tune's ``tune/`` state, as a base64 tar.gz between two marker lines;
:func:`fetch_from_log` finds them in the log and unpacks the archive safely:

* every member must be a plain file or directory with a relative name inside the run (no
  ``..``, no absolute path, no link, device or FIFO): anything else is refused by name;
* a payload that is not gzip, or an archive cut short, is one line too;
* the archive is unpacked into a temporary directory next to ``--out`` and renamed into
  place only when it is complete, so a failed fetch leaves nothing behind.

Past :data:`LOG_ARCHIVE_CAP_BYTES` the job refuses to pack and names ``--storage`` instead.
"""

from __future__ import annotations

import base64
import gzip
import io
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from nas.jobs.client import JobsError

__all__ = [
    "ARCHIVE_BEGIN",
    "ARCHIVE_END",
    "LOG_ARCHIVE_CAP_BYTES",
    "fetch_from_log",
    "land_run",
    "pack_run",
    "strip_archive",
]

ARCHIVE_BEGIN = "NAS-RUN-ARCHIVE-BEGIN"
ARCHIVE_END = "NAS-RUN-ARCHIVE-END"
# Ray's dashboard returns a job's whole log in one response, and `--wait` polls it every
# second; past 8 MiB of archive (10.7 MiB of base64) shared storage is the better road.
# A 100-trial quickstart run packs to ~110 kB (docs/ray.md), so this is thousands of trials.
LOG_ARCHIVE_CAP_BYTES = 8 * 2**20
NOT_PACKED = ("dashboard.html", "tune")


def pack_run(run_dir: Path, *, cap_bytes: int = LOG_ARCHIVE_CAP_BYTES) -> Iterator[str]:
    """Lines that carry ``run_dir`` (a tar.gz, base64) between the two markers."""
    if not (run_dir / "experiment.yaml").is_file():
        raise JobsError(f"{run_dir}: not a run directory (no experiment.yaml)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(run_dir.iterdir()):
            if path.name not in NOT_PACKED:
                tar.add(path, arcname=path.name)
    if buf.tell() > cap_bytes:
        raise JobsError(
            f"{run_dir}: the run archive is {buf.tell() / 2**20:.1f} MiB, over the "
            f"{cap_bytes / 2**20:.1f} MiB a job log carries; submit with --storage URI "
            f"(the run stays on the cluster in {run_dir.resolve()})"
        )
    text = base64.b64encode(buf.getvalue()).decode("ascii")
    yield f"{ARCHIVE_BEGIN} {run_dir.name}"
    for i in range(0, len(text), 76):
        yield text[i : i + 76]
    yield ARCHIVE_END


def _archive_lines(log: str) -> list[str]:
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(ARCHIVE_BEGIN)]
    if not starts:
        raise JobsError("job log: no run archive (the job failed or has not finished)")
    start = starts[-1]
    try:
        end = lines.index(ARCHIVE_END, start)
    except ValueError:
        raise JobsError("job log: run archive is cut short (no end marker)") from None
    return lines[start + 1 : end]


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise JobsError(f"run archive: member {member.name!r} points outside the run; refused")
    if not (member.isfile() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise JobsError(f"run archive: member {member.name!r} is a {kind}; refused")


def _tar_bytes(data: bytes) -> bytes:
    """The tar inside the gzip payload; the whole stream is checked (length and CRC), so an
    archive cut anywhere, even in its last bytes, is refused."""
    if data[:2] != b"\x1f\x8b":  # gzip magic bytes, RFC 1952 section 2.3.1
        raise JobsError("run archive: not gzip data; refused")
    try:
        return gzip.decompress(data)
    except EOFError:
        raise JobsError("run archive: truncated (the gzip stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise JobsError(f"run archive: corrupt gzip stream ({exc})") from None


def _unpack(data: bytes, into: Path) -> None:
    """Check every member, then extract (tar ``data`` filter as a second guard)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(_tar_bytes(data)), mode="r:") as tar:
            members = tar.getmembers()  # reads to the end: a cut tar fails here
            for member in members:
                _check_member(member)
            if "experiment.yaml" not in {m.name for m in members}:
                raise JobsError("run archive: no experiment.yaml; not a run directory")
            tar.extractall(into, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise JobsError(f"run archive: {exc}; refused") from None
    except tarfile.ReadError as exc:
        raise JobsError(f"run archive: not a complete tar ({exc})") from None


def land_run(out: Path, fill: Callable[[Path], None]) -> Path:
    """Build the run in a temporary directory next to ``out`` with ``fill``, then rename it
    to ``out``: on any error nothing is left at ``out``."""
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise JobsError(f"--out {out}: already exists and is not empty; give another directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        fill(tmp)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def fetch_from_log(log: str, out: Path) -> Path:
    """Unpack the run archive of a job log into ``out`` (see the module docstring)."""
    try:
        data = base64.b64decode("".join(_archive_lines(log)), validate=True)
    except ValueError as exc:
        if isinstance(exc, JobsError):
            raise
        raise JobsError(f"job log: run archive is not valid base64: {exc}") from None
    return land_run(out, lambda tmp: _unpack(data, tmp))


def strip_archive(lines: Iterable[str]) -> Iterator[str]:
    """Log lines without the archive block (for printing a job's log)."""
    inside = False
    for line in lines:
        if line.startswith(ARCHIVE_BEGIN):
            inside = True
            yield f"[run archive of {line[len(ARCHIVE_BEGIN) :].strip()} omitted]"
            continue
        if inside:
            inside = line != ARCHIVE_END
            continue
        yield line
