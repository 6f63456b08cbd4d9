"""Hover text: the architecture, parallel plan and objective values of each trial."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nas.dashboard._data import ARCH_FIELDS, Objective, param_columns, plan_columns
from nas.units import axis_scale, format_metric, format_number, kind_of

_LABELS = dict(ARCH_FIELDS)


# Hardware figures shown on hover when the record has them: (column, label). Their text
# comes from nas.units (the CLI's formatter): "8.03 B params", "72.1 GB" (decimal), "1.2 ms".
HARDWARE_FIELDS = (
    ("step_time_s", "step"),
    ("prefill_ttft_s", "TTFT"),
    ("decode_tpot_s", "TPOT"),
    ("memory_per_device_bytes", "memory/device"),
    ("mfu", "MFU"),
    ("tokens", "tokens"),
)


_PLAN_LABELS = {"sequence_parallel": "sp", "micro_batch": "mb", "global_batch": "gb"}
_PLAN_SKIP = {"num_microbatches"}  # derived from the batch sizes


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _fields(
    frame: pd.DataFrame,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(numeric architecture, numeric plan, other) fields as (label, column), in label order;
    the same layout serves :func:`hover_text` and :func:`hover_data`."""
    arch: list[tuple[str, str]] = []
    plan: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for name, col in param_columns(frame).items():
        if not _is_number(frame[col]):
            other.append((_LABELS.get(name, name), col))
        elif not (frame[col].fillna(0) == 0).all():  # all-zero: absent (experts of a dense model)
            arch.append((_LABELS.get(name, name), col))
    for name, col in plan_columns(frame).items():
        if name not in _PLAN_SKIP:
            (plan if _is_number(frame[col]) else other).append((_PLAN_LABELS.get(name, name), col))
    return arch, plan, other


def _join_rows(cells: list[str], per_line: int = 4) -> list[str]:
    return [" · ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]


def _column_text(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].map(format_number).astype(str)


def _metric_text(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].map(lambda v: format_metric(col, v)).astype(str)


def _figures_text(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> list[pd.Series]:
    """The objectives line and the hardware line (those not objectives), in human units."""
    names = {o.name for o in objectives}
    objs = [o.name + " " + _metric_text(frame, o.name) for o in objectives if o.name in frame]
    hw = [
        label + " " + _metric_text(frame, col)
        for col, label in HARDWARE_FIELDS
        if col in frame and col not in names
    ]
    return [_join(part, " · ") for part in (objs, hw) if part]


def _other_text(frame: pd.DataFrame, other: list[tuple[str, str]]) -> pd.Series:
    text = pd.Series("", index=frame.index)
    for i, (label, col) in enumerate(other):
        text = text + ("" if i == 0 else " · ") + label + " " + _column_text(frame, col)
    return text


def _join(parts: list[pd.Series], sep: str) -> pd.Series:
    out = parts[0]
    for part in parts[1:]:
        out = out + sep + part
    return out


def hover_text(
    frame: pd.DataFrame, objectives: tuple[Objective, ...], *, title_col: str | None = None
) -> list[str]:
    """One ``<br>``-separated label per row: title, architecture, plan, objectives."""
    if len(frame) == 0:
        return []
    arch, plan, other = _fields(frame)
    if title_col is not None and title_col in frame.columns:
        lines = ["<b>" + frame[title_col].astype(str) + "</b>"]
    else:
        lines = ["<b>trial " + _column_text(frame, "trial") + "</b>"]
    cells = [label + " " + _column_text(frame, col) for label, col in arch]
    lines += [_join(cells[i : i + 4], " · ") for i in range(0, len(cells), 4)]
    if other:
        lines.append(_other_text(frame, other))
    if plan:
        lines.append("plan: " + _join([lb + " " + _column_text(frame, c) for lb, c in plan], " "))
    lines += _figures_text(frame, objectives)
    return [str(t) for t in _join(lines, "<br>").tolist()]


def hover_data(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> dict[str, Any]:
    """Trace keywords giving the label of :func:`hover_text`, compact for large traces: the
    numbers travel as one float32 ``customdata`` matrix (base64 in the page, several times
    smaller than text and faster to parse), the non-numeric fields as a short ``text``. The
    objectives and hardware figures are printed by plotly with the unit nas.units picks for
    the whole column (``axis_scale``: ``GB``, ``ms``, ``B params``) to 3 significant digits,
    so a 20,000-trial page carries no per-point strings for them."""
    arch, plan, other = _fields(frame)
    columns: list[tuple[str, float]] = [("trial", 1.0)]

    def slot(col: str, spec: str = "", scale: float = 1.0) -> str:
        columns.append((col, scale))
        return f"%{{customdata[{len(columns) - 1}]{spec}}}"

    def figure(col: str) -> str:
        kind = kind_of(col)
        if kind == "number":
            return slot(col, ":.4~g")
        high = float(pd.to_numeric(frame[col], errors="coerce").abs().max())
        count = ("params" if col.startswith("params") else "tokens") if kind == "count" else ""
        scale, unit = axis_scale(high, kind, unit=count)
        if kind == "rate" and "tokens" in col:
            unit = f"{unit} tokens/s".strip()
        return slot(col, ":.3~g", scale) + (f" {unit}" if unit and unit != "%" else unit)

    lines = ["<b>trial %{customdata[0]}</b>"]
    lines += _join_rows([f"{label} {slot(col)}" for label, col in arch])
    if other:
        lines.append("%{text}")
    if plan:
        lines.append("plan: " + " ".join(f"{label} {slot(col)}" for label, col in plan))
    names = {o.name for o in objectives}
    objs = [f"{o.name} {figure(o.name)}" for o in objectives if o.name in frame.columns]
    hw = [
        f"{label} {figure(col)}"
        for col, label in HARDWARE_FIELDS
        if col in frame.columns and col not in names
    ]
    lines += [" · ".join(part) for part in (objs, hw) if part]
    matrix = np.column_stack(
        [
            pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) / scale
            for c, scale in columns
        ]
    )
    out: dict[str, Any] = {
        "customdata": matrix.astype(np.float32),
        "hovertemplate": "<br>".join(lines) + "<extra>%{fullData.name}</extra>",
    }
    if other:
        out["text"] = _other_text(frame, other).tolist()
    return out
