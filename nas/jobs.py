"""Submitting an experiment to a Ray cluster through the Ray Jobs API, and getting its run back.

* Address: ``--address`` or ``RAY_ADDRESS`` (the dashboard URL, ``http://HEAD:8265``).
* Token (clusters started with ``RAY_AUTH_MODE=token``): ``--token``, else ``RAY_AUTH_TOKEN``,
  else the file named by ``RAY_AUTH_TOKEN_PATH``; sent as ``Authorization: Bearer <token>``.
  With none of these, Ray's own lookup applies (``~/.ray/auth_token`` when
  ``RAY_AUTH_MODE=token`` is set here).
* The job's working directory is a copy of the project without virtual environments, run
  directories, ``.git`` and caches, plus the resolved experiment as ``.nas-job/<name>.yaml``.
  Its entrypoint is ``python -m nas run .nas-job/<name>.yaml --backend ray --address auto
  --out .nas-job/run`` followed by ``python -m nas jobs pack .nas-job/run``.
* Getting the run back works with any cluster, local or remote: ``pack`` prints the run
  directory (without ``dashboard.html`` and Tune's ``tune/`` state) as a base64 tar.gz between
  two marker lines of the job's log; :func:`fetch_run` finds them in the log, unpacks the
  archive and rewrites the dashboard locally.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nas.experiment import dump_experiment, load_experiment

__all__ = [
    "ARCHIVE_BEGIN",
    "ARCHIVE_END",
    "JobsError",
    "api_errors",
    "fetch_run",
    "follow",
    "job_client",
    "pack_run",
    "strip_archive",
    "submit_experiment",
]

ARCHIVE_BEGIN = "NAS-RUN-ARCHIVE-BEGIN"
ARCHIVE_END = "NAS-RUN-ARCHIVE-END"
JOB_DIR = ".nas-job"
# Never shipped: environments, results, VCS and caches (Ray's working_dir limit is 500 MiB).
EXCLUDES = (
    ".venv*",
    "venv",
    ".git",
    "runs",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.egg-info",
    "test-artifacts",
    "node_modules",
    JOB_DIR,
)
_NOT_PACKED = ("dashboard.html", "tune")


class JobsError(ValueError):
    """A bad address, token, job id or job log; one line."""


def _token(token: str | None) -> str | None:
    if token:
        return token
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise JobsError(f"RAY_AUTH_TOKEN_PATH: cannot read {path}: {exc.strerror}") from None
    return None


@contextlib.contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Ray's client errors (refused connection, bad token, unknown job) as one-line
    :class:`JobsError`s naming ``what`` was asked."""
    try:
        from ray.exceptions import RayError
    except ImportError:  # pragma: no cover - job_client reports the missing extra first
        yield
        return
    try:
        yield
    except (RuntimeError, ConnectionError, RayError) as exc:
        text = str(exc).strip()
        line = text.splitlines()[0] if text else type(exc).__name__
        raise JobsError(f"{what}: {line}") from None


def job_client(address: str | None, token: str | None = None) -> Any:
    """A ``JobSubmissionClient`` for ``address`` (or ``RAY_ADDRESS``) with the token."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise JobsError("nas submit needs Ray: pip install -e '.[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise JobsError("--address: give the dashboard URL http://HEAD:8265 or set RAY_ADDRESS")
    secret = _token(token)
    headers = {"Authorization": f"Bearer {secret}"} if secret else None
    try:
        with api_errors(f"--address {address}"):
            return JobSubmissionClient(address, headers=headers)
    except JobsError:
        raise
    except ValueError as exc:  # Ray's own address parsing ("Invalid address format", ...)
        raise JobsError(
            f"--address {address}: {exc}; expected the dashboard URL http://HEAD:8265"
        ) from None


def _stage(project: Path, experiment_path: Path, trials: int | None) -> tuple[Path, str]:
    """A temporary copy of the project plus the resolved experiment; (dir, its path in it)."""
    experiment = load_experiment(experiment_path)
    if trials is not None:
        from nas.runs import with_overrides

        experiment = with_overrides(experiment, trials=trials)
    stage = Path(tempfile.mkdtemp(prefix="nas-job-"))
    shutil.copytree(project, stage / "project", ignore=shutil.ignore_patterns(*EXCLUDES))
    rel = f"{JOB_DIR}/{experiment.name}.yaml"
    (stage / "project" / JOB_DIR).mkdir()
    (stage / "project" / rel).write_text(dump_experiment(experiment))
    return stage, rel


def entrypoint(experiment_rel: str) -> str:
    """The job's shell command (see the module docstring)."""
    exp, out = shlex.quote(experiment_rel), f"{JOB_DIR}/run"
    return (
        f"python -m nas run {exp} --backend ray --address auto --out {out} --quiet"
        f" && python -m nas jobs pack {out}"
    )


def submit_experiment(
    client: Any, experiment_path: Path, *, project: Path, trials: int | None = None
) -> str:
    """Submit the experiment as a job; returns the job id."""
    if not (project / "nas" / "__init__.py").is_file():
        raise JobsError(f"--project {project}: not the project root (no nas/__init__.py)")
    stage, rel = _stage(project, experiment_path, trials)
    try:
        job_id: str = client.submit_job(
            entrypoint=entrypoint(rel),
            runtime_env={"working_dir": str(stage / "project")},
            metadata={"experiment": Path(rel).stem, "submitted_by": "nas submit"},
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return job_id


# --- the run directory through the job log -------------------------------------------------


def pack_run(run_dir: Path) -> Iterator[str]:
    """Lines that carry ``run_dir`` (a tar.gz, base64) between the two markers."""
    if not (run_dir / "experiment.yaml").is_file():
        raise JobsError(f"{run_dir}: not a run directory (no experiment.yaml)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(run_dir.iterdir()):
            if path.name not in _NOT_PACKED:
                tar.add(path, arcname=path.name)
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


def fetch_run(log: str, out: Path) -> Path:
    """Unpack the run archive of a job log into ``out``; rewrites the dashboard there."""
    if (out / "experiment.yaml").exists():
        raise JobsError(f"--out {out}: already holds a run; give another directory")
    try:
        data = base64.b64decode("".join(_archive_lines(log)), validate=True)
    except ValueError as exc:
        raise JobsError(f"job log: run archive is not valid base64: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(out, filter="data")  # refuses absolute paths and links out of ``out``
    _dashboard(out)
    return out


def _dashboard(run_dir: Path) -> None:
    try:
        from nas.dashboard import write_dashboard
    except ImportError:
        return
    try:
        write_dashboard(run_dir)
    except Exception:  # the run is fetched; `nas dashboard RUN_DIR` can redo the page
        return


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


_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def follow(
    client: Any,
    job_id: str,
    *,
    emit: Any,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> str:
    """Print the job's new log lines (archive block left out) until it ends; its status.

    Polls ``get_job_logs`` rather than streaming, so it needs nothing but HTTP."""
    import time

    printed = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id))
        status = status.rsplit(".", 1)[-1]  # JobStatus.SUCCEEDED -> SUCCEEDED
        lines = client.get_job_logs(job_id).splitlines()
        done = status in _TERMINAL
        # a partial last line is printed only once the job is over
        ready = lines if done else lines[:-1]
        shown = list(strip_archive(ready))
        for line in shown[printed:]:
            emit(line)
        printed = max(printed, len(shown))
        if done:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise JobsError(f"job {job_id}: still {status} after {timeout_s:g} s")
        time.sleep(poll_s)
