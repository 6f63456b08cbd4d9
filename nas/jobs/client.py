"""The Ray Jobs API client: address, token, one-line errors, following a job's log.

* Address: ``--address`` or ``RAY_ADDRESS`` (the dashboard URL, ``http://HEAD:8265``).
  ``--address`` wins: Ray's client would otherwise take ``RAY_API_SERVER_ADDRESS`` or
  ``RAY_ADDRESS`` over the address it is given (``ray.dashboard.utils.
  get_address_for_submission_client``) and send the job to another cluster.
* Token (clusters started with ``RAY_AUTH_MODE=token``): ``--token``, else ``RAY_AUTH_TOKEN``,
  else the file named by ``RAY_AUTH_TOKEN_PATH``; sent as ``Authorization: Bearer <token>``.
  With none of these, Ray's own lookup applies (``~/.ray/auth_token`` when
  ``RAY_AUTH_MODE=token`` is set here).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["JobsError", "api_errors", "follow", "job_client", "job_status"]


class JobsError(ValueError):
    """A bad address, token, job id, job log, archive or storage; one line."""


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
        with api_errors(f"--address {address}"), _only_address(address):
            return JobSubmissionClient(address, headers=headers)
    except JobsError:
        raise
    except ValueError as exc:  # Ray's own address parsing ("Invalid address format", ...)
        raise JobsError(
            f"--address {address}: {exc}; expected the dashboard URL http://HEAD:8265"
        ) from None


@contextlib.contextmanager
def _only_address(address: str) -> Iterator[None]:
    """Ray's address variables set to ``address`` while the client is made, then restored."""
    names = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["RAY_API_SERVER_ADDRESS"] = address
    os.environ.pop("RAY_ADDRESS", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def job_status(client: Any, job_id: str) -> str:
    """PENDING | RUNNING | SUCCEEDED | FAILED | STOPPED (``JobStatus.X`` -> ``X``)."""
    return str(client.get_job_status(job_id)).rsplit(".", 1)[-1]


_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def follow(
    client: Any,
    job_id: str,
    *,
    emit: Callable[[str], None],
    hide: Callable[[Iterable[str]], Iterator[str]] = iter,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> str:
    """Print the job's new log lines (``hide`` filters them) until it ends; its status.

    Polls ``get_job_logs`` rather than streaming, so it needs nothing but HTTP."""
    import time

    printed = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = job_status(client, job_id)
        lines = client.get_job_logs(job_id).splitlines()
        done = status in _TERMINAL
        # a partial last line is printed only once the job is over
        ready = lines if done else lines[:-1]
        shown = list(hide(ready))
        for line in shown[printed:]:
            emit(line)
        printed = max(printed, len(shown))
        if done:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise JobsError(f"job {job_id}: still {status} after {timeout_s:g} s")
        time.sleep(poll_s)
