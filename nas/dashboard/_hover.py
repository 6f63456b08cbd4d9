"""Hover text: the architecture, parallel plan and objective values of each trial."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nas.dashboard._data import ARCH_FIELDS, Objective, param_columns, plan_columns

_LABELS = dict(ARCH_FIELDS)


def fmt(value: object) -> str:
    """A short display form: integers plain, floats to 4 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not np.isfinite(v):
            return "-"
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return "-" if value is None else str(value)


def _column_text(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].map(fmt).astype(str)


def hover_text(
    frame: pd.DataFrame, objectives: tuple[Objective, ...], *, title_col: str | None = None
) -> list[str]:
    """One ``<br>``-separated block per row: title, architecture, plan, objectives."""
    n = len(frame)
    if n == 0:
        return []
    lines: list[pd.Series] = []
    if title_col is not None and title_col in frame.columns:
        lines.append("<b>" + frame[title_col].astype(str) + "</b>")
    elif "trial" in frame.columns:
        lines.append("<b>trial " + _column_text(frame, "trial") + "</b>")
    arch = [
        _LABELS.get(name, name) + " " + _column_text(frame, col)
        for name, col in param_columns(frame).items()
    ]
    for i in range(0, len(arch), 4):  # four fields per line keeps the label narrow
        line = arch[i]
        for part in arch[i + 1 : i + 4]:
            line = line + " · " + part
        lines.append(line)
    plan = [name + " " + _column_text(frame, col) for name, col in plan_columns(frame).items()]
    if plan:
        line = "plan: " + plan[0]
        for part in plan[1:]:
            line = line + " " + part
        lines.append(line)
    objs = [o.name + " " + _column_text(frame, o.name) for o in objectives if o.name in frame]
    if objs:
        line = objs[0]
        for part in objs[1:]:
            line = line + " · " + part
        lines.append(line)
    text = lines[0]
    for line in lines[1:]:
        text = text + "<br>" + line
    return [str(t) for t in text.tolist()]


def hover_data(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> dict[str, Any]:
    """Trace keywords for the same label as :func:`hover_text`, compact for large traces:
    numbers travel as one float32 ``customdata`` matrix (base64 in the page, ~5x smaller
    than text and faster to parse), categorical fields as a short ``text`` per point."""
    numeric: list[str] = ["trial"] if "trial" in frame.columns else []
    cells: list[str] = []  # template pieces, "" marks the categorical text slot
    for name, col in param_columns(frame).items():
        label = _LABELS.get(name, name)
        if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
            cells.append(f"{label} %{{customdata[{len(numeric)}]}}")
            numeric.append(col)
    categorical = [
        (name, col)
        for name, col in param_columns(frame).items()
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])
    ]
    if categorical:
        cells.append("%{text}")
    lines = ["<b>trial %{customdata[0]}</b>"] if numeric[:1] == ["trial"] else []
    lines += [" · ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    plan = []
    for name, col in plan_columns(frame).items():
        plan.append(f"{name} %{{customdata[{len(numeric)}]}}")
        numeric.append(col)
    if plan:
        lines.append("plan: " + " ".join(plan))
    objs = []
    for o in objectives:
        if o.name in frame.columns:
            objs.append(f"{o.name} %{{customdata[{len(numeric)}]:.4g}}")
            numeric.append(o.name)
    if objs:
        lines.append(" · ".join(objs))
    matrix = (
        np.column_stack(
            [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in numeric]
        )
        if numeric
        else np.zeros((len(frame), 0))
    )
    out: dict[str, Any] = {
        "customdata": matrix.astype(np.float32),
        "hovertemplate": "<br>".join(lines) + "<extra>%{fullData.name}</extra>",
    }
    if categorical:
        text = pd.Series("", index=frame.index)
        for i, (name, col) in enumerate(categorical):
            sep = "" if i == 0 else " · "
            text = text + sep + _LABELS.get(name, name) + " " + frame[col].astype(str)
        out["text"] = text.tolist()
    return out
