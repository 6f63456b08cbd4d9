"""Other panels: parallel coordinates, hypervolume vs trial, breakdown bars, the front table."""

from __future__ import annotations

import html
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go

from nas.dashboard._data import Dataset, param_columns, plan_columns
from nas.dashboard._figures import axis_title, colour
from nas.dashboard._hover import hover_text
from nas.dashboard._hv import HypervolumeHistory, hypervolume_history
from nas.search.pareto import normalise, to_minimisation
from nas.units import Kind, axis_scale, axis_ticks, format_number, kind_of

__all__ = [
    "breakdown_bars",
    "front_members",
    "front_table",
    "hypervolume_curves",
    "parallel_coordinates",
]


MAX_BARS_PER_GROUP = 30
MAX_TABLE_ROWS = 2000
# Parallel coordinates draw every line in WebGL: in software rendering (SwiftShader, headless
# Chromium on 2 cores) ~2 s fixed plus ~2 ms per line, measured; a few hundred lines already
# show the shape of the space, so larger runs show the front plus a sample up to this many.
MAX_PARCOORDS_LINES = 500
REFERENCE = 1.1  # hypervolume reference point in normalised objectives (10% beyond the worst)


MAX_AXIS_TICKS = 6  # labelled values per parallel-coordinates axis (more collide at 480 px)


def _dimension(frame: pd.DataFrame, col: str, label: str) -> dict[str, Any] | None:
    """One parallel-coordinates axis: a few round ticks labelled by :mod:`nas.units`, the
    values scaled to the axis unit named in the label (``params_total (B params)``) so the
    range labels at both ends stay short; categories label at most ``MAX_AXIS_TICKS``."""
    series = frame[col]
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        cats = sorted(series.astype(str).unique())
        if len(cats) < 2:
            return None
        codes = series.astype(str).map({c: i for i, c in enumerate(cats)})
        every = -(-len(cats) // MAX_AXIS_TICKS)  # ceil: label every n-th category
        shown = list(range(0, len(cats), every))
        return {
            "label": label,
            "values": codes,
            "tickvals": shown,
            "ticktext": [cats[i][:12] for i in shown],
        }
    values = pd.to_numeric(series, errors="coerce")
    if values.nunique(dropna=True) < 2:
        return None
    low, high = float(values.min()), float(values.max())
    kind = kind_of(col)
    scale, unit = axis_scale(max(abs(low), abs(high)), kind, unit=_count_unit(col, kind))
    ticks, text = axis_ticks(low / scale, high / scale, max_ticks=MAX_AXIS_TICKS)
    return {
        "label": f"{label} ({unit})" if unit else label,
        "values": values / scale,
        "range": [low / scale, high / scale],
        "tickvals": ticks,
        "ticktext": text,
        "tickformat": ".3~g",  # the range labels at both ends: 3 significant digits
    }


def _count_unit(col: str, kind: Kind) -> str:
    if kind != "count":
        return ""
    return "params" if col.startswith("params") else "tokens"


def parcoords_rows(data: Dataset, *, limit: int = MAX_PARCOORDS_LINES) -> pd.DataFrame:
    """The front plus a seeded random sample of the rest, ``limit`` rows at most (a sample
    of the front itself when it alone is larger)."""
    trials = data.trials
    if len(trials) <= limit:
        return trials
    front = trials[trials["on_front"]]
    if len(front) > limit:
        front = front.sample(n=limit, random_state=0)
    rest = trials[~trials["on_front"]]
    sample = rest.sample(n=min(len(rest), limit - len(front)), random_state=0)
    out: pd.DataFrame = pd.concat([front, sample]).sort_index()
    return out


def parallel_coordinates(data: Dataset) -> go.Figure | None:
    """Architecture parameters (and the objectives), one line per trial, coloured by an objective."""
    trials = parcoords_rows(data)
    dims = [
        d
        for name, col in param_columns(trials).items()
        if (d := _dimension(trials, col, name)) is not None
    ]
    if len(data.groups) > 1 and "system" not in param_columns(trials):
        d = _dimension(trials, "group", "system")
        if d is not None:
            dims.append(d)
    # objectives always get an axis (a constant one too, as the colour scale names them)
    dims += [
        _dimension(trials, o.name, o.name) or {"label": o.name, "values": trials[o.name]}
        for o in data.objectives
    ]
    if len(dims) < 2:
        return None
    first = data.objectives[0]
    line = {
        "color": trials[first.name],
        "colorscale": "Viridis",
        "reversescale": first.direction == "max",
        "showscale": True,
        "colorbar": {"title": {"text": first.name}},
    }
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    buttons = [
        {
            "label": f"colour: {o.name}",
            "method": "restyle",
            "args": [
                {
                    "line.color": [trials[o.name].to_numpy()],
                    "line.reversescale": o.direction == "max",
                    "line.colorbar.title.text": o.name,
                }
            ],
        }
        for o in data.objectives
    ]
    fig.update_layout(
        margin={"t": 90, "l": 60, "r": 120, "b": 30},
        height=480,
        updatemenus=[{"buttons": buttons, "x": 0, "y": 1.3, "xanchor": "left", "yanchor": "top"}]
        if len(buttons) > 1
        else [],
    )
    return fig


def _run_scale(data: Dataset, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ideal and nadir (minimisation) stored by the runs, or those of ``values``."""
    names = [o.name for o in data.objectives]
    sign = np.array([-1.0 if o.direction == "max" else 1.0 for o in data.objectives])
    ideals, nadirs = [], []
    for run in data.runs:
        ref = run.summary.get("hypervolume_reference") or {}
        ideal, nadir = ref.get("ideal") or {}, ref.get("nadir") or {}
        if not all(n in ideal and n in nadir for n in names):
            break
        ideals.append(np.array([ideal[n] for n in names], dtype=np.float64) * sign)
        nadirs.append(np.array([nadir[n] for n in names], dtype=np.float64) * sign)
    else:
        if ideals:
            return np.min(ideals, axis=0), np.max(nadirs, axis=0)
    finite = values[np.all(np.isfinite(values), axis=1)]
    if len(finite) == 0:
        return np.zeros(len(names)), np.ones(len(names))
    return finite.min(axis=0), finite.max(axis=0)


def hypervolume_curves(data: Dataset) -> tuple[go.Figure, dict[str, HypervolumeHistory]]:
    """Normalised hypervolume of each group's trials so far, against trial number.

    Objectives are scaled between the ideal and nadir the runs fixed before their search
    (``summary.json``'s ``hypervolume_reference``; the widest over several runs), else the
    best and worst shown value, and the reference point is 1.1 in each (10% beyond the
    nadir), shared by all groups so their curves compare; for one run the last value is the
    summary's hypervolume.
    """
    names = [o.name for o in data.objectives]
    dirs = [o.direction for o in data.objectives]
    ok = data.trials["feasible"].fillna(False).astype(bool) if "feasible" in data.trials else None
    values = to_minimisation(data.trials[names].to_numpy(dtype=np.float64), dirs)
    if ok is not None:
        values[~ok.to_numpy()] = np.nan  # infeasible trials add no volume
    ideal, nadir = _run_scale(data, values)
    scaled = normalise(values, ideal=ideal, nadir=nadir)
    ref = np.full(len(names), REFERENCE)
    traces, histories = [], {}
    for i, group in enumerate(data.groups):
        rows = np.flatnonzero((data.trials["group"] == group).to_numpy())
        hist = hypervolume_history(scaled[rows], ref)
        histories[group] = hist
        # x: trials evaluated so far on this system, so systems searched side by side compare
        count = np.arange(1, len(rows) + 1)
        trial = data.trials["trial"].to_numpy()[rows]
        # the curve only changes at improvements: keep those points (and the last)
        keep = np.flatnonzero(np.diff(hist.hv, prepend=-1.0) != 0)
        keep = np.union1d(keep, [len(rows) - 1]) if len(rows) else keep
        traces.append(
            go.Scatter(
                x=count[keep],
                customdata=trial[keep],
                hovertemplate="after %{x} trials (trial %{customdata}): %{y:.4f}<extra></extra>",
                y=hist.hv[keep],
                mode="lines+markers",
                line={"shape": "hv", "color": colour(i)},
                marker={"size": 4},
                name=f"{group} ({hist.method})",
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        xaxis_title="trials evaluated" + (" (per system)" if len(data.groups) > 1 else ""),
        yaxis_title=f"hypervolume (normalised, box {ref[0]:.1f}^{len(names)})",
        margin={"t": 30, "l": 70, "r": 20, "b": 50},
        height=380,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig, histories


def front_members(data: Dataset) -> pd.DataFrame:
    """Front rows per group sorted by the first objective, at most MAX_BARS_PER_GROUP each
    (evenly spaced along the front when it is longer)."""
    first = data.objectives[0]
    parts = []
    for group in data.groups:
        front = data.trials[(data.trials["group"] == group) & data.trials["on_front"]]
        front = front.sort_values(first.name, ascending=first.direction == "min")
        if len(front) > MAX_BARS_PER_GROUP:
            pick = np.unique(np.linspace(0, len(front) - 1, MAX_BARS_PER_GROUP).round().astype(int))
            front = front.iloc[pick]
        parts.append(front)
    out: pd.DataFrame = pd.concat(parts) if parts else data.trials.iloc[:0]
    return out


def _view_buttons(
    views: dict[str, tuple[npt.NDArray[np.float64], list[str], str]],
) -> dict[str, Any]:
    """Buttons switching every bar trace's values, hover template and the y title."""
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [
                {"y": list(values.T), "hovertemplate": hover},
                {"yaxis.title.text": title},
                list(range(values.shape[1])),
            ],
        }
        for label, (values, hover, title) in views.items()
    ]
    return {
        "type": "buttons",
        "direction": "right",
        "buttons": buttons,
        "showactive": True,
        "x": 0,
        "y": 1.2,
        "xanchor": "left",
        "yanchor": "top",
    }


LIMIT_COLOUR = "#c62828"


def breakdown_bars(
    data: Dataset, kind: Literal["time", "memory"], parts: dict[str, str], *, what: str
) -> go.Figure:
    """Stacked bars of time (s) or per-device memory (GB) parts (``parts``: part -> column)
    for the front's members; ``what`` names the quantity on the axis (e.g. "step time")."""
    members = front_members(data)
    several = len(data.groups) > 1
    ids = [f"#{t}" for t in members["trial"]]
    # several systems: a two-level axis (system, then trial) names each system once
    labels: list[Any] = [list(members["group"].astype(str)), ids] if several else ids
    scale, unit = (1.0, "s") if kind == "time" else (1e-9, "GB")
    text = hover_text(members, data.objectives)
    absolute = members[list(parts.values())].to_numpy(dtype=np.float64) * scale
    total = absolute.sum(axis=1, keepdims=True)
    share = 100.0 * absolute / np.where(total > 0, total, 1.0)
    templates = {
        u: [f"{p}: %{{y:.4g}} {u}<br>%{{text}}<extra></extra>" for p in parts] for u in (unit, "%")
    }
    traces = [
        go.Bar(
            x=labels,
            y=absolute[:, j],
            name=part,
            text=text,
            textposition="none",
            hovertemplate=templates[unit][j],
        )
        for j, part in enumerate(parts)
    ]
    if kind == "memory" and "device_memory_bytes" in members:
        # the device's memory as a red tick over each bar (share view: % of that bar)
        limit = members["device_memory_bytes"].to_numpy(dtype=np.float64)[:, None] * scale
        traces.append(
            go.Scatter(
                x=labels,
                y=limit[:, 0],
                mode="markers",
                name="device memory",
                marker={"symbol": "line-ew-open", "size": 34, "line": {"width": 3}},
                marker_color=LIMIT_COLOUR,
                hovertemplate=f"device memory: %{{y:.4g}} {unit}<extra></extra>",
            )
        )
        absolute = np.hstack([absolute, limit])
        share = np.hstack([share, 100.0 * limit / np.where(total > 0, total, 1.0)])
        templates[unit].append(f"device memory: %{{y:.4g}} {unit}<extra></extra>")
        templates["%"].append("device memory: %{y:.4g} % of the bar<extra></extra>")
    fig = go.Figure(traces)
    title = f"{what} (s)" if kind == "time" else f"{what} (GB, 10^9 bytes)"
    views = {
        "absolute": (absolute, templates[unit], title),
        "share %": (share, templates["%"], f"share of {what} (%)"),
    }
    fig.update_layout(
        barmode="stack",
        yaxis_title=title,
        xaxis_title=f"front members, by {data.objectives[0].name}",
        xaxis={"type": "multicategory" if several else "category"},
        margin={"t": 40, "l": 70, "r": 20, "b": 60},
        height=420,
        legend={"orientation": "h", "y": 1.14, "x": 0.2},
        updatemenus=[_view_buttons(views)],
    )
    return fig


def front_table(data: Dataset) -> str:
    """The front as a plain HTML table (sortable by the page script), best first."""
    first = data.objectives[0]
    front = data.trials[data.trials["on_front"]]
    front = front.sort_values(first.name, ascending=first.direction == "min").head(MAX_TABLE_ROWS)
    columns: list[tuple[str, str]] = []
    if len(data.groups) > 1:
        columns.append(("system", "group"))
    columns.append(("trial", "trial"))
    d = {o.name: o.direction for o in data.objectives}
    columns += [
        (axis_title(o.name, d[o.name]).replace(" is better", ""), o.name) for o in data.objectives
    ]
    columns += list(param_columns(front).items())
    columns += list(plan_columns(front).items())
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in columns)
    rows = []
    for rec in front[[c for _, c in columns]].itertuples(index=False):
        cells = "".join(f"<td>{html.escape(format_number(v))}</td>" for v in rec)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="front-table" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
