"""``nas submit`` (an experiment as a Ray job) and ``nas jobs list|status|logs|fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nas.cli._common import JsonFlag, UserError, console, print_json
from nas.cli.app import app

jobs_app = typer.Typer(
    help="Ray jobs on a cluster: list, status, logs, fetch a finished run.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")

Address = Annotated[
    str | None,
    typer.Option(help="Ray dashboard URL, http://HEAD:8265.", show_default="$RAY_ADDRESS"),
]
Token = Annotated[
    str | None,
    typer.Option(
        help="Auth token.", show_default="$RAY_AUTH_TOKEN, or the file $RAY_AUTH_TOKEN_PATH"
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(help="Run storage: a path every node sees, or s3://, gs://, file:// URI."),
]


def _project_root() -> Path:
    import nas

    return Path(nas.__file__).resolve().parent.parent


def _check_submission(
    experiment: Path, *, trials: int | None, wait: bool, out: Path | None, timeout: float | None
) -> None:
    """User mistakes found here, before a cluster is contacted (and before a job is queued)."""
    from nas.experiment import load_experiment
    from nas.runs import with_overrides

    loaded = load_experiment(experiment)
    if trials is not None:
        with_overrides(loaded, trials=trials)
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout: must be a positive number of seconds, got {timeout!r}")
    if not wait and (out is not None or timeout is not None):
        raise UserError(f"{'--out' if out is not None else '--timeout'}: only with --wait")
    if out is not None and out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: already exists and is not empty; give another directory")


def _shipment(
    pip: list[str] | None, requirements: Path | None, image: str | None, storage: str | None
) -> Any:
    from nas.jobs import Shipment, read_requirements
    from nas.jobs.storage import check_writable

    reqs = tuple(pip or ()) + (read_requirements(requirements) if requirements else ())
    shipment = Shipment(pip=reqs, image=image, storage=storage)
    if storage is not None:
        check_writable(storage)  # the client reads the run from there: check before queueing
    return shipment


@app.command("submit")
def submit(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    address: Address = None,
    token: Token = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the logs, then fetch.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="With --wait: where the run lands.", show_default="runs/<job id>"),
    ] = None,
    trials: Annotated[int | None, typer.Option(help="Override search.trials.")] = None,
    project: Annotated[
        Path | None,
        typer.Option(help="Project root to ship.", show_default="the installed nas checkout"),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="With --wait: give up after S s.")] = None,
    storage: Storage = None,
    pip: Annotated[
        list[str] | None, typer.Option(help="pip requirement for the job (repeat the flag).")
    ] = None,
    requirements: Annotated[
        Path | None, typer.Option(help="pip requirements file for the job.")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Container image the job runs in (runtime_env image_uri).")
    ] = None,
) -> None:
    """Run EXPERIMENT on a Ray cluster (backend ray) through the Jobs API; prints the job id."""
    from nas.jobs import api_errors, job_client, submit_experiment

    _check_submission(experiment, trials=trials, wait=wait, out=out, timeout=timeout)
    shipment = _shipment(pip, requirements, image, storage)
    client = job_client(address, token)
    with api_errors("submit"):
        job_id = submit_experiment(
            client, experiment, project=project or _project_root(), trials=trials,
            shipment=shipment,
        )  # fmt: skip
    typer.echo(job_id)
    if wait:
        _wait_and_fetch(client, job_id, out or Path("runs") / job_id, timeout)


def _wait_and_fetch(client: Any, job_id: str, out: Path, timeout: float | None) -> None:
    from nas.jobs import api_errors, error_line, fetch_job, follow, strip_archive

    with api_errors(f"job {job_id}"):
        status = follow(client, job_id, emit=typer.echo, hide=strip_archive, timeout_s=timeout)
        if status != "SUCCEEDED":
            said = error_line(client.get_job_logs(job_id))
            if said:
                raise UserError(f"job {job_id} {status}: {said}")
            raise UserError(f"job {job_id} ended {status}; see nas jobs logs {job_id}")
    run_dir = fetch_job(client, job_id, out)
    console.print(f"run directory: {run_dir}")


@jobs_app.command("list")
def jobs_list(address: Address = None, token: Token = None, json_out: JsonFlag = False) -> None:
    """Jobs of the cluster, newest first."""
    from rich.table import Table

    from nas.jobs import api_errors, job_client

    client = job_client(address, token)
    with api_errors("jobs list"):
        jobs = client.list_jobs()
    rows = [
        {
            "job_id": str(job.submission_id or job.job_id),
            "status": str(job.status).rsplit(".", 1)[-1],
            "entrypoint": str(job.entrypoint),
        }
        for job in sorted(jobs, key=lambda j: j.start_time or 0, reverse=True)
    ]
    if json_out:
        print_json(rows)
        return
    table = Table("job id", "status", "entrypoint", title="Ray jobs")
    for r in rows:
        table.add_row(r["job_id"], r["status"], r["entrypoint"])
    console.print(table)


@jobs_app.command("status")
def jobs_status(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    address: Address = None,
    token: Token = None,
    json_out: JsonFlag = False,
) -> None:
    """A job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and message."""
    from nas.jobs import api_errors, job_client

    client = job_client(address, token)
    with api_errors(f"job {job_id}"):
        info = client.get_job_info(job_id)
    if json_out:
        status = str(info.status).rsplit(".", 1)[-1]
        print_json({"job_id": job_id, "status": status, "message": info.message or ""})
        return
    typer.echo(f"{str(info.status).rsplit('.', 1)[-1]}  {info.message or ''}".rstrip())


@jobs_app.command("logs")
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    address: Address = None,
    token: Token = None,
    follow: Annotated[bool, typer.Option("--follow", help="Until the job ends.")] = False,
) -> None:
    """A job's log (the run archive block is left out)."""
    from nas.jobs import api_errors, job_client, strip_archive
    from nas.jobs import follow as follow_job

    client = job_client(address, token)
    with api_errors(f"job {job_id}"):
        if follow:
            follow_job(client, job_id, emit=typer.echo, hide=strip_archive)
            return
        log = client.get_job_logs(job_id)
    for line in strip_archive(log.splitlines()):
        typer.echo(line)


@jobs_app.command("fetch")
def jobs_fetch(
    job_id: Annotated[str, typer.Argument(help="Job id of a finished nas submit job.")],
    address: Address = None,
    token: Token = None,
    out: Annotated[
        Path | None, typer.Option(help="Where the run lands.", show_default="runs/<job id>")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Read the run here.", show_default="the job's --storage"),
    ] = None,
) -> None:
    """Copy a finished job's run directory to OUT (from its storage, else its log)."""
    from nas.jobs import fetch_job, job_client

    client = job_client(address, token)
    run_dir = fetch_job(client, job_id, out or Path("runs") / job_id, storage=storage)
    console.print(f"run directory: {run_dir}")


@jobs_app.command("pack", hidden=True)
def jobs_pack(run_dir: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Print RUN_DIR as a log archive (a submitted job's last step without --storage)."""
    from nas.jobs import pack_run

    for line in pack_run(run_dir):
        typer.echo(line)


@jobs_app.command("push", hidden=True)
def jobs_push(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.")],
    storage: Annotated[str, typer.Option(help="Run storage URI.")],
) -> None:
    """Copy RUN_DIR to the storage (a submitted job's last step with --storage)."""
    from nas.jobs.storage import push_run

    typer.echo(f"run stored at {push_run(run_dir, storage)}")
