"""Experiments as Ray jobs: submit (code, environment, preflight), follow, and get the run
back from storage or from the job's log. See ``docs/ray.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.jobs.archive import (
    ARCHIVE_BEGIN,
    ARCHIVE_END,
    LOG_ARCHIVE_CAP_BYTES,
    fetch_from_log,
    pack_run,
    strip_archive,
)
from nas.jobs.client import JobsError, api_errors, follow, job_client, job_status
from nas.jobs.submit import EXCLUDES, Shipment, entrypoint, read_requirements, submit_experiment

__all__ = [
    "ARCHIVE_BEGIN",
    "ARCHIVE_END",
    "EXCLUDES",
    "LOG_ARCHIVE_CAP_BYTES",
    "JobsError",
    "Shipment",
    "api_errors",
    "entrypoint",
    "error_line",
    "fetch_from_log",
    "fetch_job",
    "follow",
    "job_client",
    "job_status",
    "pack_run",
    "read_requirements",
    "strip_archive",
    "submit_experiment",
]


def fetch_job(client: Any, job_id: str, out: Path, *, storage: str | None = None) -> Path:
    """The run of a finished job into ``out``: from its storage (``storage``, else the one it
    was submitted with) or, without one, from the archive in its log."""
    with api_errors(f"job {job_id}"):
        info = client.get_job_info(job_id)
    storage = storage or (info.metadata or {}).get("storage") or None
    if storage:
        from nas.jobs.storage import pull_run

        run_dir = pull_run(storage, job_id, out)
    else:
        with api_errors(f"job {job_id}"):
            log = client.get_job_logs(job_id)
        run_dir = fetch_from_log(log, out)
    _dashboard(run_dir)
    return run_dir


def _dashboard(run_dir: Path) -> None:
    """Rewrite ``dashboard.html`` here (it is not shipped back: 4.7 MB of plotly)."""
    try:
        from nas.dashboard import write_dashboard

        write_dashboard(run_dir)
    except Exception:  # the run is fetched; `nas dashboard RUN_DIR` can redo the page
        return


def error_line(log: str) -> str | None:
    """The last ``error: ...`` line of a job's log (what ``nas`` or the preflight said)."""
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    return errors[-1][len("error: ") :] if errors else None
