"""Entry points: build the dashboard file from one or several run directories."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nas.dashboard._data import DashboardError, load_run, merge_runs
from nas.dashboard._html import render_page
from nas.rundir import atomic_write_text

DEFAULT_NAME = "dashboard.html"


def build_dashboard(run_dirs: Sequence[Path], out: Path) -> Path:
    """Write the dashboard for ``run_dirs`` (merged, one front per system) to ``out``."""
    if not run_dirs:
        raise DashboardError("no run directories given")
    runs = [load_run(Path(d)) for d in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # two runs of one experiment: tell them apart by folder
        runs = [load_run(Path(d), name=Path(d).name) for d in run_dirs]
    data = merge_runs(runs)
    title = (
        f"NAS dashboard: {runs[0].name}"
        if len(runs) == 1
        else "NAS dashboard: " + " vs ".join(r.name for r in runs)
    )
    out = Path(out)
    if out.is_dir():
        raise DashboardError(
            f"--out {out}: is a directory; give a file name such as {out / DEFAULT_NAME}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_page(data, title=title))  # never a half-written page
    return out


def write_dashboard(run_dir: Path, out: Path | None = None) -> Path:
    """Write ``run_dir/dashboard.html`` (or ``out``) for one run and return its path."""
    target = Path(out) if out is not None else Path(run_dir) / DEFAULT_NAME
    return build_dashboard([Path(run_dir)], target)
