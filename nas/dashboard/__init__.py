"""The Pareto dashboard: one self-contained HTML file per run (or comparison of runs).

``write_dashboard(run_dir)`` is what ``nas run`` calls at the end; ``build_dashboard`` merges
several run directories (one front per system on shared axes); ``serve`` shows a file on
127.0.0.1. The page embeds plotly.js and opens offline.
"""

from __future__ import annotations

from nas.dashboard._build import build_dashboard, write_dashboard
from nas.dashboard._data import DashboardError, Dataset, Objective, Run, load_run, merge_runs
from nas.dashboard._serve import serve

__all__ = [
    "DashboardError",
    "Dataset",
    "Objective",
    "Run",
    "build_dashboard",
    "load_run",
    "merge_runs",
    "serve",
    "write_dashboard",
]
