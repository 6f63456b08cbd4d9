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


# Hardware figures shown on hover when the record has them: (column, label, d3 format with
# unit). "~s" is d3-format's SI prefix without trailing zeros: 8030261248 -> "8.03G"; bytes
# are decimal (GB, as device datasheets give them), not GiB.
HARDWARE_FIELDS = (
    ("step_time_s", "step", ":.3~s", "s"),
    ("prefill_ttft_s", "TTFT", ":.3~s", "s"),
    ("decode_tpot_s", "TPOT", ":.3~s", "s"),
    ("memory_per_device_bytes", "memory/device", ":.3~s", "B"),
    ("mfu", "MFU", ":.1%", ""),
    ("tokens", "tokens", ":.3~s", ""),
)
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"))


def human(value: object, unit: str = "") -> str:
    """A number with an SI prefix and its unit, as the hover templates print it (3 digits)."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        return fmt(value)
    v = float(value)
    if not np.isfinite(v):
        return "-"
    if unit == "%":
        return f"{v:.1%}"
    for scale, prefix in _SI:
        if abs(v) >= scale:
            return f"{v / scale:.3g}{prefix}{unit}"
    return f"{v:.3g}{unit}"


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
    return frame[col].map(fmt).astype(str)


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
    objs = [
        o.name + " " + frame[o.name].map(human).astype(str) for o in objectives if o.name in frame
    ]
    if objs:
        lines.append(_join(objs, " · "))
    hw = [
        label + " " + frame[col].map(lambda v, u=unit or ("%" if "%" in spec else ""): human(v, u))
        for col, label, spec, unit in HARDWARE_FIELDS
        if col in frame and col not in {o.name for o in objectives}
    ]
    if hw:
        lines.append(_join([s.astype(str) for s in hw], " · "))
    return [str(t) for t in _join(lines, "<br>").tolist()]


def hover_data(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> dict[str, Any]:
    """Trace keywords giving the label of :func:`hover_text`, compact for large traces:
    numbers travel as one float32 ``customdata`` matrix (base64 in the page, several times
    smaller than text and faster to parse), the non-numeric fields as a short ``text``."""
    arch, plan, other = _fields(frame)
    columns = ["trial"]

    def slot(col: str, spec: str = "") -> str:
        columns.append(col)
        return f"%{{customdata[{len(columns) - 1}]{spec}}}"

    lines = ["<b>trial %{customdata[0]}</b>"]
    lines += _join_rows([f"{label} {slot(col)}" for label, col in arch])
    if other:
        lines.append("%{text}")
    if plan:
        lines.append("plan: " + " ".join(f"{label} {slot(col)}" for label, col in plan))
    objs = [f"{o.name} {slot(o.name, ':.4~s')}" for o in objectives if o.name in frame.columns]
    if objs:
        lines.append(" · ".join(objs))
    names = {o.name for o in objectives}
    hw = [
        f"{label} {slot(col, spec)}{unit}"
        for col, label, spec, unit in HARDWARE_FIELDS
        if col in frame.columns and col not in names
    ]
    if hw:
        lines.append(" · ".join(hw))
    matrix = np.column_stack(
        [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns]
    )
    out: dict[str, Any] = {
        "customdata": matrix.astype(np.float32),
        "hovertemplate": "<br>".join(lines) + "<extra>%{fullData.name}</extra>",
    }
    if other:
        out["text"] = _other_text(frame, other).tolist()
    return out
