"""``nas run`` (search an experiment, or resume a run) and ``nas runs list|show``."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from nas.cli._common import JsonFlag, UserError, console, more_note, print_json
from nas.cli.app import app
from nas.units import format_metric

runs_app = typer.Typer(
    help="Run directories: list them, show a run's Pareto front.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")


def _progress_bar(live: Any, total: int, initial: int = 0) -> tuple[Progress, Any, Any]:
    bar = Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "failed {task.fields[failed]}  front {task.fields[front]}  hv {task.fields[hv]}"
        ),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("search", total=total, completed=initial, failed=0, front=0, hv="-")

    def on_trial(outcome: Any) -> None:
        live.add(outcome)
        bar.update(
            task,
            advance=1,
            failed=live.failed,
            front=live.front_size,
            hv="-" if live.hypervolume is None else f"{live.hypervolume:.4f}",
        )

    def settle(summary: dict[str, Any]) -> None:
        """The last figure is summary.json's: its scale also covers runs that ended before
        the live scale froze (fewer feasible trials than it waits for)."""
        hv = summary.get("hypervolume")
        if isinstance(hv, (int, float)) and summary.get("hypervolume_reference") is not None:
            bar.update(task, hv=f"{hv:.4f}")

    return bar, on_trial, settle


def _grid_bar() -> tuple[Progress, Any]:
    """The exhaustive backend's bar: candidates evaluated of the whole grid."""
    bar = Progress(
        TextColumn("[bold]every candidate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("grid", total=None)

    def on_chunk(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, on_chunk


def _print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    hv = summary.get("hypervolume")
    hv_text = f"{hv:.4f}" if isinstance(hv, (int, float)) else "-"
    console.print(
        f"[bold]{summary.get('trials', '?')}[/] trials ({summary.get('failed', '?')} failed, "
        f"{summary.get('feasible', '?')} feasible), front {summary.get('front_size', '?')}, "
        f"hypervolume {hv_text}"
    )
    best = summary.get("best")
    for metric, entry in (best if isinstance(best, dict) else {}).items():
        value = entry.get("value") if isinstance(entry, dict) else None
        shown = format_metric(metric, value) if isinstance(value, (int, float)) else "-"
        number = entry.get("number", "?") if isinstance(entry, dict) else "?"
        console.print(f"  best {metric}: {shown} (trial {number})")
    if summary.get("failed"):
        _print_top_failure(run_dir)
    console.print(f"run directory: {run_dir}")
    dashboard = run_dir / "dashboard.html"
    if dashboard.is_file():
        console.print(f"dashboard: {dashboard} (open it in a browser; works offline)")


def _print_top_failure(run_dir: Path) -> None:
    """The most common failure reason, so a run whose trials all failed (say, an MoE-only law
    on a dense space) says why instead of just 'front 0'."""
    import pandas as pd

    path = run_dir / "trials.parquet"
    if not path.is_file():
        return
    try:
        reasons = pd.read_parquet(path)
    except (OSError, ValueError):  # a damaged table: the summary above still stands
        console.print(f"  {path}: damaged (not a readable parquet table)", markup=False)
        return
    if "fail_reason" not in reasons or "state" not in reasons:
        return
    failed = reasons.loc[reasons["state"] == "FAIL", "fail_reason"].astype(str)
    failed = failed[failed != ""]
    if failed.empty:
        return
    counts = failed.value_counts()
    console.print(
        f"  most common failure ({int(counts.iloc[0])} of {len(reasons)} trials): "
        f"{counts.index[0]}",
        markup=False,
    )


@app.command("run")
def run(
    experiment: Annotated[Path | None, typer.Argument(help="Experiment YAML file.")] = None,
    trials: Annotated[int | None, typer.Option(help="Override search.trials.")] = None,
    backend: Annotated[str | None, typer.Option(help="optuna | exhaustive | ray.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Run directory.", show_default="ROOT/<name>-<stamp>"),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel worker processes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override search.seed.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Resume the run in this directory.")] = None,
    root: Annotated[Path, typer.Option(help="Parent of new run directories.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster for --backend ray (auto: the one this runs in).")
    ] = None,
    force_restart: Annotated[
        bool,
        typer.Option(
            "--force-restart",
            help="With --resume: run every trial again when study.db is missing or damaged.",
        ),
    ] = False,
    storage: Annotated[
        str | None, typer.Option(help="Tune storage for --backend ray: shared path or s3:// URI.")
    ] = None,
) -> None:
    """Search EXPERIMENT (a YAML file) and write a run directory; or --resume RUN_DIR."""
    from nas.experiment import load_experiment
    from nas.rundir import lock_holder, refusal
    from nas.runs import (
        finished_trials,
        live_front,
        refuse_used_run_dir,
        resume_problem,
        resume_run,
        start_run,
        with_overrides,
    )

    if (experiment is None) == (resume is None):
        which = "not both" if experiment is not None else "neither was given"
        raise UserError(f"give an EXPERIMENT file or --resume RUN_DIR ({which})")
    if force_restart and resume is None:
        raise UserError("--force-restart: only with --resume RUN_DIR")
    if resume is not None:
        if any(v is not None for v in (backend, out, workers, seed, address, storage)):
            raise UserError("--resume takes only --trials; the run keeps its own settings")
        if not (resume / "experiment.yaml").is_file():
            raise UserError(f"{resume}: not a run directory (no experiment.yaml)")
        holder = lock_holder(resume)  # before the progress bar, so the error stands alone
        if holder is not None:
            raise UserError(f"{resume}: in use by {holder}; wait for it to finish or stop it")
        exp = load_experiment(resume / "experiment.yaml")
        problem = resume_problem(resume, exp)
        if problem is not None and not force_restart:
            raise UserError(refusal(problem))
        done = 0 if problem is not None else finished_trials(resume)
    else:
        assert experiment is not None
        exp = with_overrides(
            load_experiment(experiment), trials=trials, backend=backend, workers=workers, seed=seed
        )
        if address is not None or storage is not None:
            exp = _with_ray(exp, address=address, storage=storage)
        if out is not None:
            refuse_used_run_dir(out)  # before the progress bar starts, so the error stands alone
        done = 0
    if exp.search.backend == "exhaustive":
        given = [f for f, v in (("--trials", trials), ("--workers", workers)) if v is not None]
        if given:
            raise UserError(f"{given[0]}: the exhaustive backend evaluates every candidate "
                            "of the space once; leave it out")  # fmt: skip
        bar, on_chunk = _grid_bar()
        with _resume_note(), bar if not quiet else _Null():
            if resume is not None:
                result = resume_run(
                    resume, trials=trials, force_restart=force_restart, notice=_notice
                )
            else:
                result = start_run(
                    exp,
                    out=out,
                    root=root,
                    grid_progress=None if quiet else on_chunk,
                    notice=_notice,
                )
        _print_summary(result.summary, result.run_dir)
        return
    total = trials if trials is not None else exp.search.trials
    bar, on_trial, settle = _progress_bar(live_front(exp), total, initial=min(done, total))
    report = None if quiet else on_trial
    with _resume_note(), bar if not quiet else _Null():
        if resume is not None:
            result = resume_run(
                resume, trials=trials, progress=report, force_restart=force_restart, notice=_notice
            )
        else:
            result = start_run(exp, out=out, root=root, progress=report, notice=_notice)
        if not quiet:
            settle(result.summary)
    _print_summary(result.summary, result.run_dir)


@contextlib.contextmanager
def _resume_note() -> Iterator[None]:
    """Ctrl-C during a search: one line saying how to go on, exit 130."""
    from nas.search.base import RunInterrupted

    try:
        yield
    except RunInterrupted as exc:
        typer.echo(f"interrupted; resume with: nas run --resume {exc.run_dir}", err=True)
        raise typer.Exit(130) from None


def _notice(line: str) -> None:
    typer.echo(f"note: {line}", err=True)


def _with_ray(exp: Any, *, address: str | None, storage: str | None) -> Any:
    from nas.experiment import experiment_from_dict

    if exp.search.backend != "ray":
        flag = "--address" if address is not None else "--storage"
        raise UserError(f"{flag} is for the ray backend: add --backend ray")
    data = exp.model_dump(mode="json")
    if address is not None:
        data["search"]["ray"]["address"] = address
    if storage is not None:
        from nas.jobs.storage import check_writable

        check_writable(storage)  # before the run directory is made
        data["search"]["ray"]["storage"] = storage
    return experiment_from_dict(data, source="command line")


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


@runs_app.command("list")
def runs_list(
    root: Annotated[
        Path, typer.Option(help="Directory holding run directories.", show_default=True)
    ] = Path("runs"),
    json_out: JsonFlag = False,
) -> None:
    """List the runs under ROOT, newest first (none when ROOT does not exist yet)."""
    from nas.runs import list_runs

    if root.exists() and not root.is_dir():
        raise UserError(f"--root: {root} is not a directory")
    runs = list_runs(root)
    if json_out:
        print_json(runs)
        return
    if not root.exists():
        console.print(f"no runs: {root} does not exist yet (nas run creates it)")
        return
    table = Table(
        "run", "status", "trials", "failed", "front", "hypervolume", title=f"runs in {root}"
    )
    for r in runs:
        hv = r.get("hypervolume")
        table.add_row(
            Path(r["run_dir"]).name,
            r["status"],
            str(r.get("trials", "-")),
            str(r.get("failed", "-")),
            str(r.get("front_size", "-")),
            f"{hv:.4f}" if isinstance(hv, float) and math.isfinite(hv) else "-",
        )
    console.print(table)
    for r in runs:
        if r["status"] == "damaged":
            console.print(f"damaged: {r['problem']}", markup=False)


_SHOW_COLUMNS = ("system", "plan_tp", "plan_pp", "plan_dp", "plan_ep")


@runs_app.command("show")
def runs_show(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    limit: Annotated[int, typer.Option(help="Rows of the front to print.")] = 30,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the summary and every front row as JSON."),
    ] = False,
) -> None:
    """Print a run's summary and its Pareto front as a table."""
    import pandas as pd

    from nas.rundir import read_summary

    summary_path = run_dir / "summary.json"
    front_path = run_dir / "pareto.csv"
    if not summary_path.is_file() or not front_path.is_file():
        raise UserError(f"{run_dir}: no finished run here (summary.json and pareto.csv missing)")
    if limit < 1:
        raise UserError(f"--limit: must be a positive number of rows, got {limit}")
    summary = read_summary(summary_path)
    try:
        front = pd.read_csv(front_path)
    except pd.errors.EmptyDataError:
        front = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError):
        raise UserError(f"{front_path}: damaged (not a readable CSV table)") from None
    expected = summary.get("front_size")
    if isinstance(expected, int) and (
        len(front) != expected or (expected and "number" not in front)
    ):
        raise UserError(
            f"{front_path}: damaged ({len(front)} readable front rows, summary.json says "
            f"{expected}); nas run --resume {run_dir} writes it again"
        )
    if json_out:
        print_json({"summary": summary, "front": front.to_dict(orient="records")})
        return
    objectives = list(summary.get("objectives", {}))
    params = [c for c in front.columns if c.startswith("param_")]
    extra = [c for c in _SHOW_COLUMNS if c in front.columns and c not in objectives]
    if "system" in extra and front["system"].nunique() <= 1:
        extra.remove("system")
    columns = ["number", *objectives, *params, *extra]
    headers = [c.removeprefix("param_").removeprefix("plan_") for c in columns]
    headers[0] = "#"
    table = Table(*headers, title=f"{summary.get('name', run_dir.name)}: Pareto front")
    for _, row in front.head(limit).iterrows():
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    console.print(table)
    more_note(min(limit, len(front)), len(front), what="front rows", flag="--limit or --json")
    _print_summary(summary, run_dir)


def _cell(column: str, value: Any) -> str:
    """A front cell in human units by its column's name (``params_total`` -> ``370 M params``)."""
    return format_metric(column, value)
