"""Assemble the dashboard: one self-contained HTML file (plotly.js inline, no network)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go
import plotly.io as pio

from nas.dashboard._data import Dataset, axis_options, breakdown_families
from nas.dashboard._figures import MAX_3D_DOMINATED, pareto_2d, pareto_3d, system_fronts
from nas.dashboard._labels import LABEL_SCRIPT
from nas.dashboard._panels import (
    breakdown_bars,
    front_table,
    hypervolume_curves,
    parallel_coordinates,
    parcoords_rows,
)
from nas.units import format_metric, format_value

# Above this many trials the scatter panels use WebGL (Scattergl): SVG slows down past a few
# thousand markers (plotly.js docs, "WebGL vs SVG").
GL_THRESHOLD = 5000
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1280px;padding:0 16px 40px;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:18px 0 4px} h2{font-size:1.15em;margin:0 0 6px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:14px 0}
p.note{color:#555;font-size:.9em;margin:2px 0 8px} .axis-select{margin:4px 0 6px}
.axis-select select{margin:0 8px 0 4px} .axis-select label{margin-right:14px}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:.92em;margin:6px 0}
dl.summary dt{color:#555} dl.summary dd{margin:0}
.table-wrap{max-height:520px;overflow:auto}
div.warning{background:#fff4e5;border:1px solid #f0a040;border-radius:6px;padding:8px 12px;margin:10px 0}
table.sortable{border-collapse:collapse;font-size:.85em;width:100%}
table.sortable th,table.sortable td{border-bottom:1px solid #e4e4e4;padding:3px 8px;text-align:right;white-space:nowrap}
table.sortable th{position:sticky;top:0;background:#f0f0f0;cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:" \\25B2"} table.sortable th[data-dir=desc]::after{content:" \\25BC"}
"""

# Axis switching for the 2-D front and click-to-sort for the table; no libraries.
_SCRIPT = """
(function(){
  var el = document.getElementById('axis-data');
  var gd = document.getElementById('fig-pareto2d');
  if (el && gd) {
    var data = JSON.parse(el.textContent);
    var xs = document.getElementById('x-axis'), ys = document.getElementById('y-axis');
    var redraw = function(){
      var idx = data.traces.map(function(_, i){ return i; });
      Plotly.update(gd,
        {x: data.traces.map(function(t){ return t[xs.value]; }),
         y: data.traces.map(function(t){ return t[ys.value]; })},
        {'xaxis.title.text': data.labels[xs.value], 'yaxis.title.text': data.labels[ys.value],
         'xaxis.autorange': true, 'yaxis.autorange': true}, idx);
    };
    xs.addEventListener('change', redraw); ys.addEventListener('change', redraw);
    ['x', 'y'].forEach(function(a){
      var box = document.getElementById('log-' + a);
      box.addEventListener('change', function(){
        var upd = {}; upd[a + 'axis.type'] = box.checked ? 'log' : 'linear';
        upd[a + 'axis.autorange'] = true; Plotly.relayout(gd, upd);
      });
    });
  }
  var key = function(text){
    var v = parseFloat(text);
    return (text.trim() !== '' && isFinite(v) && /^[-+0-9.eE]+$/.test(text.trim())) ? v : text;
  };
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th, col){
      th.addEventListener('click', function(){
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        table.querySelectorAll('th').forEach(function(h){ h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var x = key(a.cells[col].textContent), y = key(b.cells[col].textContent);
          var c = (typeof x === 'number' && typeof y === 'number') ? x - y
                : String(x).localeCompare(String(y));
          return dir === 'asc' ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
})();
"""


@dataclass(frozen=True, kw_only=True)
class Panel:
    """One section of the page: an anchor id, a title, a note and a figure or raw HTML."""

    key: str
    title: str
    note: str = ""
    controls: str = ""
    figure: go.Figure | None = None
    body: str = ""

    def __post_init__(self) -> None:
        if (self.figure is None) == (not self.body):
            raise ValueError(f"panel {self.key}: give exactly one of figure or body")


def _json_script(element_id: str, obj: Any) -> str:
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _select(element_id: str, options: list[str], selected: str) -> str:
    opts = "".join(
        f'<option value="{html.escape(o)}"{" selected" if o == selected else ""}>{html.escape(o)}</option>'
        for o in options
    )
    return f'<select id="{element_id}">{opts}</select>'


def _checkbox(element_id: str, label: str, checked: bool) -> str:
    mark = " checked" if checked else ""
    return f'<label><input type="checkbox" id="{element_id}"{mark}> {label}</label> '


def _front_panel(data: Dataset, *, gl: bool) -> tuple[Panel, dict[str, Any]]:
    options = axis_options(data)
    fig2d, axes = pareto_2d(data, options=options, gl=gl)
    y0 = options[1] if len(options) > 1 else options[0]
    log_x, log_y = (fig2d.layout[a].type == "log" for a in ("xaxis", "yaxis"))
    chooser = (
        f'<div class="axis-select">x {_select("x-axis", options, options[0])}'
        f"{_checkbox('log-x', 'log x', log_x)} y {_select('y-axis', options, y0)}"
        f"{_checkbox('log-y', 'log y', log_y)}</div>"
    )
    panel = Panel(
        key="pareto2d",
        title="Pareto front",
        note="Front highlighted, dominated trials faded, infeasible trials (a constraint "
        "broken) as grey crosses, never on the front. Black stars: reference models scored "
        f"under the same workload and budget ({html.escape(_budget(data))}). "
        "Hover a point for its architecture, parallel plan and hardware figures.",
        controls=chooser,
        figure=fig2d,
    )
    return panel, axes.as_json()


def _budget(data: Dataset) -> str:
    """The first run's workload budget in words (what the references were scored under)."""
    workload = data.runs[0].experiment.get("workload", {}) if data.runs else {}
    if workload.get("budget_gpu_hours"):
        return f"{float(workload['budget_gpu_hours']):,.0f} GPU-hours"
    if workload.get("tokens"):
        return format_value(float(workload["tokens"]), "count", unit="training tokens")
    return f"{workload.get('mode', 'the run')} workload"


def objectives_warning(data: Dataset) -> str:
    """A banner when the compared runs do not share their objectives ('' when they do)."""

    def spec(run: Any) -> str:
        return ", ".join(f"{o.name} {o.direction}" for o in run.objectives)

    if len({spec(r) for r in data.runs}) <= 1:
        return ""
    listed = "; ".join(f"{html.escape(r.name)}: {html.escape(spec(r))}" for r in data.runs)
    used = html.escape(spec(data.runs[0]))
    return (
        '<div class="warning" id="objectives-warning">The compared runs differ in objectives '
        f"({listed}). Fronts, hypervolume and axes use the first run's: {used}.</div>"
    )


def _sampled_note(shown: int, total: int, what: str) -> str:
    return f"{shown} of {total} {what} (random sample, seed 0)." if shown < total else ""


def _shape_panels(data: Dataset, *, n_front: int) -> list[Panel]:
    """Per-system fronts, 3-D view and parallel coordinates, where the data has them."""
    panels = []
    if len(data.groups) > 1:
        fig = system_fronts(data, gl=n_front > GL_THRESHOLD)
        panels.append(Panel(key="systems", title="Fronts per system", figure=fig))
    if len(data.objectives) >= 3:
        dominated = len(data.trials) - n_front
        shown = min(dominated, MAX_3D_DOMINATED)
        note = _sampled_note(shown, dominated, "dominated trials shown with the whole front")
        panels.append(
            Panel(key="pareto3d", title="Front in 3-D", note=note, figure=pareto_3d(data))
        )
    parallel = parallel_coordinates(data)
    if parallel is not None:
        shown = len(parcoords_rows(data))
        note = _sampled_note(shown, len(data.trials), "trials shown, the front first")
        panels.append(
            Panel(key="parallel", title="Architecture parameters", note=note, figure=parallel)
        )
    return panels


def build_panels(data: Dataset) -> tuple[list[Panel], dict[str, Any]]:
    """Every panel the data supports, in page order, and the axis data for the 2-D panel."""
    n_front = int(data.trials["on_front"].sum())
    front, axis_json = _front_panel(data, gl=len(data.trials) > GL_THRESHOLD)
    panels = [front, *_shape_panels(data, n_front=n_front)]
    hv_fig, hists = hypervolume_curves(data)
    method = ", ".join(sorted({h.method for h in hists.values()}))
    note = (
        "Objectives scaled to [0, 1] between the ideal and nadir the runs fixed before "
        "their search (summary.json; else best to worst shown), "
        f"reference point 1.1 in each; {method}."
    )
    panels.append(Panel(key="hypervolume", title="Hypervolume vs trial", note=note, figure=hv_fig))
    panels += _breakdown_panels(data)
    table = f'<div class="table-wrap">{front_table(data)}</div>'
    note = "Click a column header to sort."
    panels.append(Panel(key="table", title="Front members", note=note, body=table))
    return panels, axis_json


# summary.json entries said once elsewhere in the header: the run's name is the heading,
# the front size is recomputed per system, the trial counts make one "trials" line
_SUMMARY_SKIP = {"name", "front_size", "trials", "complete", "failed", "pruned", "feasible"}
_TRIAL_COUNTS = ("failed", "pruned", "feasible")


def _breakdown_panels(data: Dataset) -> list[Panel]:
    """Time and memory breakdowns of the front, one panel per family (train step; or
    prefill / decode for serving)."""
    panels = []
    step = "step time" if "step_time_s" in data.trials.columns else "time"
    kinds: tuple[Literal["time", "memory"], ...] = ("time", "memory")
    for kind in kinds:
        for family, parts in breakdown_families(data.trials, kind).items():
            if kind == "time":
                what = f"{family} time" if family else step
            else:
                what = f"{family} memory per device" if family else "memory per device"
            panels.append(
                Panel(
                    key="-".join(p for p in (family, kind, "breakdown") if p),
                    title=f"{what[0].upper()}{what[1:]} breakdown of the front",
                    figure=breakdown_bars(data, kind, parts, what=what),
                )
            )
    return panels


def _trial_counts(run: Any, complete: int) -> str:
    """ "N complete (F failed, P pruned, E feasible)" from the run's summary.json."""
    counts = [f"{run.summary[k]} {k}" for k in _TRIAL_COUNTS if k in run.summary]
    return f"{complete} complete" + (f" ({', '.join(counts)})" if counts else "")


def _summary(data: Dataset) -> str:
    """The header's facts, each once: the heading names the run(s), so they are not
    repeated here; summary.json's trial counts form one line with the trials shown."""
    several = len(data.runs) > 1
    items: list[tuple[str, str]] = [
        ("objectives", ", ".join(f"{o.name} ({o.direction})" for o in data.objectives)),
    ]
    if several:
        per_run = data.trials.groupby("run").size() if "run" in data.trials else None
        for run in data.runs:
            shown = int(per_run.get(run.name, 0)) if per_run is not None else len(data.trials)
            items.append((f"trials of {run.name}", _trial_counts(run, shown)))
    else:
        items.append(("trials", _trial_counts(data.runs[0], len(data.trials))))
    items.append(
        (
            "front size" + (" (sum of per-system fronts)" if len(data.groups) > 1 else ""),
            str(int(data.trials["on_front"].sum())),
        )
    )
    if len(data.groups) > 1:
        items.append(("systems", ", ".join(data.groups)))
    for run in data.runs:
        for key, value in run.summary.items():
            if isinstance(value, (int, float, str)) and key not in _SUMMARY_SKIP:
                items.append((f"{key} ({run.name})" if several else key, format_metric(key, value)))
    if len(data.trials) == 0:
        items.append(("note", "no completed trials yet: the panels are empty"))
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f'<dl class="summary" id="summary">{rows}</dl>'


def render_page(data: Dataset, *, title: str) -> str:
    """The full HTML document; plotly.js is inlined with the first figure."""
    panels, axis_json = build_panels(data)
    n_figs = sum(p.figure is not None for p in panels)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f'<meta name="nas-dashboard-figures" content="{n_figs}">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        objectives_warning(data),
        "".join(
            f'<p class="note">{html.escape(str(r.experiment["description"]))}</p>'
            for r in data.runs
            if r.experiment.get("description")
        ),
        _summary(data),
    ]
    inlined = False
    for panel in panels:
        parts.append(f'<section id="{panel.key}"><h2>{html.escape(panel.title)}</h2>')
        if panel.note:
            parts.append(f'<p class="note">{panel.note}</p>')
        parts.append(panel.controls)
        if panel.figure is not None:
            parts.append(
                pio.to_html(
                    panel.figure,
                    full_html=False,
                    include_plotlyjs=not inlined,  # True once: plotly.js embedded inline
                    div_id=f"fig-{panel.key}",
                    config=PLOT_CONFIG,
                )
            )
            inlined = True
        else:
            parts.append(panel.body)
        parts.append("</section>")
    parts.append(_json_script("axis-data", axis_json))
    parts.append(f"<script>{_SCRIPT}{LABEL_SCRIPT}</script></body></html>")
    return "".join(parts)
