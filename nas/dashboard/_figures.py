"""Scatter panels: the 2-D front with selectable axes, the 3-D view and the per-system fronts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from nas.dashboard._data import Dataset
from nas.dashboard._hover import hover_data, hover_text

PALETTE = qualitative.Plotly
FADED_OPACITY = 0.25
INFEASIBLE_COLOUR = "#9e9e9e"  # grey crosses: broke a constraint, never on the front
REFERENCE_COLOUR = "#111111"  # black stars: catalogue models, not a system of the run
# Reference labels are placed by the page script (nas.dashboard._html, placeLabels) from the
# text's measured size, clear of each other and of the stars, after every axis change; the
# traces carry this meta so the script finds them.
REFERENCE_META = "reference-labels"
# 3-D scatter is WebGL whatever its size; past a few thousand faded points it is a cloud that
# costs seconds to draw in software rendering, so dominated trials are sampled beyond this.
MAX_3D_DOMINATED = 4000
LOG_SPAN = 100.0  # max/min ratio above which an axis starts logarithmic


def colour(i: int) -> str:
    return str(PALETTE[i % len(PALETTE)])


def axis_title(name: str, direction: str | None = None) -> str:
    arrow = {"min": " (lower is better)", "max": " (higher is better)"}.get(direction or "", "")
    return name + arrow


def axis_type(values: pd.Series) -> str:
    """``log`` for positive values spanning more than two decades, else ``linear``."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if len(arr) and arr.min() > 0 and arr.max() / arr.min() > LOG_SPAN:
        return "log"
    return "linear"


@dataclass(frozen=True, kw_only=True)
class AxisData:
    """For each trace of a 2-D figure, its values under every selectable axis column."""

    options: list[str]
    labels: dict[str, str]
    traces: list[dict[str, list[float | None]]] = field(default_factory=list)

    def add(self, frame: pd.DataFrame) -> None:
        self.traces.append({opt: _values(frame, opt) for opt in self.options})

    def as_json(self) -> dict[str, Any]:
        return {"options": self.options, "labels": self.labels, "traces": self.traces}


def _values(frame: pd.DataFrame, col: str) -> list[float | None]:
    if col not in frame.columns:
        return [None] * len(frame)
    arr = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
    # 6 significant digits is finer than any marker; keeps the embedded JSON small
    return [float(f"{v:.6g}") if np.isfinite(v) else None for v in arr]


def _scatter(gl: bool, **kwargs: Any) -> go.Scatter | go.Scattergl:
    return go.Scattergl(**kwargs) if gl else go.Scatter(**kwargs)


def _group_traces(
    data: Dataset, x: str, y: str, *, gl: bool, axes: AxisData | None
) -> list[go.Scatter | go.Scattergl]:
    traces: list[go.Scatter | go.Scattergl] = []
    trials = data.trials
    feasible = (
        trials["feasible"].fillna(False).astype(bool)
        if "feasible" in trials
        else pd.Series(True, index=trials.index)
    )
    for i, group in enumerate(data.groups):
        in_group = trials["group"] == group
        parts = {
            "infeasible": trials[in_group & ~feasible],
            "dominated": trials[in_group & feasible & ~trials["on_front"]],
            "front": trials[in_group & trials["on_front"]].sort_values(x),
        }
        markers = {
            "infeasible": {
                "size": 5,
                "symbol": "x",
                "color": INFEASIBLE_COLOUR,
                "opacity": FADED_OPACITY + 0.15,
            },
            "dominated": {"size": 5, "color": colour(i), "opacity": FADED_OPACITY},
            "front": {"size": 9, "color": colour(i), "line": {"width": 1, "color": "#222"}},
        }
        for kind, part in parts.items():
            if kind == "infeasible" and len(part) == 0:
                continue
            traces.append(
                _scatter(
                    gl,
                    x=part[x],
                    y=part[y],
                    mode="markers",
                    name=f"{group}: {kind}",
                    legendgroup=group,
                    marker=markers[kind],
                    **hover_data(part, data.objectives),
                )
            )
            if axes is not None:
                axes.add(part)
    return traces


def _reference_traces(data: Dataset, x: str, y: str, axes: AxisData | None) -> list[go.Scatter]:
    out: list[go.Scatter] = []
    refs = data.references
    if len(refs) == 0 or x not in refs.columns or y not in refs.columns:
        return out
    groups = data.groups
    for group, sub in refs.groupby("group", sort=False):
        i = groups.index(str(group)) if group in groups else len(out)
        sub = sub.sort_values(x)
        out.append(
            go.Scatter(
                x=sub[x],
                y=sub[y],
                mode="markers",
                meta=REFERENCE_META,
                name=(f"{group}: references" if len(groups) > 1 else "reference models")
                + " (same workload and budget)",
                legendgroup=str(group),
                text=sub["name"].astype(str),  # the labels the page script places
                marker={
                    "symbol": "star",
                    "size": 14,
                    "color": REFERENCE_COLOUR,
                    "line": {"width": 1.5, "color": colour(i)},
                },
                hovertext=hover_text(sub, data.objectives, title_col="name"),
                hovertemplate="%{hovertext}<extra>reference</extra>",
            )
        )
        if axes is not None:
            axes.add(sub)
    return out


def pareto_2d(data: Dataset, *, options: list[str], gl: bool) -> tuple[go.Figure, AxisData]:
    """The front on the first two objectives (axes switchable in the page) and the references."""
    directions = {o.name: o.direction for o in data.objectives}
    x = options[0]
    y = options[1] if len(options) > 1 else options[0]
    axes = AxisData(options=options, labels={o: axis_title(o, directions.get(o)) for o in options})
    traces = _group_traces(data, x, y, gl=gl, axes=axes) + _reference_traces(data, x, y, axes)
    fig = go.Figure(traces)
    fig.update_xaxes(type=axis_type(data.trials[x]))
    fig.update_yaxes(type=axis_type(data.trials[y]))
    fig.update_layout(
        xaxis_title=axes.labels[x],
        yaxis_title=axes.labels[y],
        hovermode="closest",
        legend={"orientation": "h", "y": -0.18},
        margin={"t": 30, "l": 70, "r": 20, "b": 60},
        height=520,
    )
    return fig, axes


def pareto_3d(data: Dataset) -> go.Figure:
    """The first three objectives in 3-D: front highlighted, dominated trials faded."""
    x, y, z = (o.name for o in data.objectives[:3])
    traces: list[Any] = []
    trials = data.trials
    dominated = trials[~trials["on_front"]]
    if len(dominated) > MAX_3D_DOMINATED:  # every front member stays
        keep = dominated.sample(n=MAX_3D_DOMINATED, random_state=0).index
        trials = trials[trials["on_front"] | trials.index.isin(keep)]
    for i, group in enumerate(data.groups):
        sub = trials[trials["group"] == group]
        for on_front in (False, True):
            part = sub[sub["on_front"] == on_front]
            traces.append(
                go.Scatter3d(
                    x=part[x],
                    y=part[y],
                    z=part[z],
                    mode="markers",
                    name=f"{group}: front" if on_front else f"{group}: dominated",
                    marker={
                        "size": 5 if on_front else 2,
                        "color": colour(i),
                        "opacity": 1.0 if on_front else FADED_OPACITY,
                    },
                    **hover_data(part, data.objectives),
                )
            )
    refs = data.references
    if len(refs) and all(c in refs.columns for c in (x, y, z)):
        traces.append(
            go.Scatter3d(
                x=refs[x],
                y=refs[y],
                z=refs[z],
                mode="markers+text",
                name="reference models",
                text=refs["name"].astype(str),
                marker={"symbol": "diamond", "size": 6, "color": "#222"},
                hovertext=hover_text(refs, data.objectives, title_col="name"),
                hovertemplate="%{hovertext}<extra>reference</extra>",
            )
        )
    fig = go.Figure(traces)
    d = {o.name: o.direction for o in data.objectives}
    fig.update_layout(
        scene={
            "xaxis": {"title": {"text": axis_title(x, d[x])}, "type": axis_type(data.trials[x])},
            "yaxis": {"title": {"text": axis_title(y, d[y])}, "type": axis_type(data.trials[y])},
            "zaxis": {"title": {"text": axis_title(z, d[z])}, "type": axis_type(data.trials[z])},
        },
        margin={"t": 10, "l": 0, "r": 0, "b": 0},
        height=560,
        legend={"orientation": "h"},
    )
    return fig


def system_fronts(data: Dataset, *, gl: bool) -> go.Figure:
    """One front per system (or run) on shared axes: the cross-hardware comparison."""
    x, y = data.objectives[0].name, data.objectives[min(1, len(data.objectives) - 1)].name
    two = len(data.objectives) == 2
    traces: list[Any] = []
    for i, group in enumerate(data.groups):
        front = data.trials[(data.trials["group"] == group) & data.trials["on_front"]]
        front = front.sort_values([x, y])
        traces.append(
            _scatter(
                gl,
                x=front[x],
                y=front[y],
                mode="lines+markers" if two else "markers",
                line={"shape": "hv", "color": colour(i)},
                marker={"size": 7, "color": colour(i)},
                name=f"{group} ({len(front)} on front)",
                **hover_data(front, data.objectives),
            )
        )
    traces += _reference_traces(data, x, y, None)
    fig = go.Figure(traces)
    d = {o.name: o.direction for o in data.objectives}
    front = data.trials[data.trials["on_front"]]
    fig.update_xaxes(type=axis_type(front[x]))
    fig.update_yaxes(type=axis_type(front[y]))
    fig.update_layout(
        xaxis_title=axis_title(x, d[x]),
        yaxis_title=axis_title(y, d[y]),
        hovermode="closest",
        margin={"t": 30, "l": 70, "r": 20, "b": 50},
        height=460,
    )
    return fig
