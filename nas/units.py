"""Numbers for people: the one formatter of the CLI and the dashboard.

Conventions, stated once:

* three significant digits and the unit after a space: ``3.62 GB``, ``1.2 ms``,
  ``8.03 B params``, ``1.23 TFLOP``, ``45.1%``;
* bytes are decimal (``GB`` = 10^9 bytes, as device datasheets give memory); binary units
  are always named as such (``GiB`` = 2^30 bytes, :func:`gib_and_gb` prints both);
* counts (parameters, tokens) use the short-scale suffixes ``k, M, B, T`` (``8.03 B``
  parameters, as model cards write them); every other unit takes SI prefixes;
* times below one second in ``ms``/``µs``/``ns``, above in ``s`` (grouped thousands);
* integers that are sizes or counts of a shape (``d_model 4096``) stay plain.

A metric's kind comes from its name (units live in names: ``_s``, ``_bytes``, ``_flops``,
``params_``, ``tokens``, ``mfu``; see :func:`kind_of`). For plot axes, :func:`axis_scale`
picks one unit for a whole axis (``B params``, ``GB``, ``ms``) and :func:`axis_ticks` a few
round tick values with short labels, so ticks never print long numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import numpy as np

__all__ = [
    "Kind",
    "axis_scale",
    "axis_ticks",
    "format_metric",
    "format_number",
    "format_value",
    "gib_and_gb",
    "kind_of",
]

Kind = Literal["bytes", "seconds", "count", "flops", "fraction", "rate", "number"]

_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_SHORT_SCALE = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_SUBSECOND = ((1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_FRACTIONS = frozenset({"mfu", "hfu", "fraction", "share", "memory_headroom"})


def kind_of(metric: str) -> Kind:
    """The kind of a metric from its name (``memory_per_device_bytes`` -> bytes, ...)."""
    name = metric.lower()
    if name.endswith("_bytes") or name.endswith("_bytes_per_token"):
        return "bytes"
    if name.endswith("_per_s") or name.endswith("_per_s_per_device"):
        return "rate"
    if name.endswith("_s"):
        return "seconds"
    if "flops" in name:
        return "flops"
    if name in _FRACTIONS or name.endswith("_fraction"):
        return "fraction"
    if name.startswith("params") or name == "tokens" or name.endswith("_tokens"):
        return "count"
    return "number"


def _scaled(value: float, table: tuple[tuple[float, str], ...], digits: int) -> tuple[str, str]:
    """``value`` divided by the largest scale it reaches, to ``digits`` significant digits,
    and that scale's prefix (rounding up to the next prefix: 999.6e6 -> 1 B, not 1e+03 M)."""
    mag = abs(value)
    for i, (scale, prefix) in enumerate(table):
        if mag >= scale or i == len(table) - 1:
            text = _sig(value / scale, digits)
            if i > 0 and abs(float(text)) >= 1000:  # rounded up into the next prefix
                return _sig(value / table[i - 1][0], digits), table[i - 1][1]
            return text, prefix
    raise AssertionError("unreachable")  # the last row always matches


def _sig(value: float, digits: int) -> str:
    """``digits`` significant digits, never in exponent form, no trailing zeros."""
    if value == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def format_number(value: object) -> str:
    """A plain number: integers as they are, other floats to 4 significant digits (whole
    units from 10,000 on, never in exponent form there); ``-`` for
    a missing or non-finite value; booleans as true/false; anything else as ``str``."""
    if value is None:
        return "-"
    if _is_bool(value):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return "-"
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.0f}" if abs(v) >= 1e4 else f"{v:.4g}"  # never 1.235e+04
    return str(value)


def _seconds(v: float, digits: int) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f} s"
    if abs(v) >= 1 or v == 0:
        return f"{_sig(v, digits)} s"
    larger = (1.0, "s")
    for scale, name in _SUBSECOND:
        if abs(v) >= scale or name == "ns":
            text = _sig(v / scale, digits)
            if abs(float(text)) >= 1000:  # 0.99996 ms rounds to 1000 ms: say 1 µs... up
                return f"{_sig(v / larger[0], digits)} {larger[1]}"
            return f"{text} {name}"
        larger = (scale, name)
    raise AssertionError("unreachable")  # ns always matches


def format_value(value: float, kind: Kind, *, unit: str = "", digits: int = 3) -> str:
    """``value`` (SI base units: bytes, seconds, FLOPs, a fraction) as text with its unit;
    ``unit`` names what a count or rate counts (``params``; ``tokens/s``, default ``/s``)."""
    v = float(value)
    if not math.isfinite(v):
        return "-"
    if kind == "fraction":
        return f"{_sig(v * 100, digits)}%"
    if kind == "seconds":
        return _seconds(v, digits)
    if kind in ("bytes", "flops"):
        text, prefix = _scaled(v, _SI, digits)
        return f"{text} {prefix}{'B' if kind == 'bytes' else 'FLOP'}"
    if kind in ("count", "rate"):
        text, prefix = _scaled(v, _SHORT_SCALE, digits)
        out = f"{text} {prefix}" if prefix else text
        word = unit or ("/s" if kind == "rate" else "")
        if word:
            out += word if word.startswith("/") else f" {word}"
        return out
    return format_number(v)


def format_metric(name: str, value: object) -> str:
    """A metric by its name: ``format_metric('params_total', 8.03e9)`` -> ``8.03 B params``,
    ``format_metric('memory_per_device_bytes', 3.62e9)`` -> ``3.62 GB``; booleans, text
    and plain numbers (``num_layers``) through :func:`format_number`."""
    kind = kind_of(name)
    if kind == "number" or _is_bool(value) or not isinstance(value, numbers.Real):
        return format_number(value)
    unit = ""
    if kind == "count":
        unit = "params" if name.startswith("params") else "tokens"
    elif kind == "rate" and "tokens" in name:
        unit = "tokens/s"
    return format_value(float(value), kind, unit=unit)


def gib_and_gb(value_bytes: float) -> str:
    """Bytes in binary and decimal units, so "80 GB" and "74.51 GiB" read as the same."""
    return f"{value_bytes / 2**30:,.2f} GiB ({value_bytes / 1e9:,.1f} GB)"


def axis_scale(high: float, kind: Kind, *, unit: str = "") -> tuple[float, str]:
    """A divisor and its unit for a whole plot axis whose values reach ``high`` (same
    prefixes as :func:`format_value`): parameters in ``B params``, memory in ``GB``, times
    in ``ms`` or ``s``, large plain numbers in ``k``; ``(1.0, "")`` when none is needed."""
    mag = abs(high) if math.isfinite(high) else 0.0
    if kind == "fraction":
        return 0.01, "%"
    if kind == "seconds":
        for scale, name in ((1.0, "s"), *_SUBSECOND):
            if mag >= scale or name == "ns":
                return scale, name
    if kind in ("bytes", "flops"):
        scale, prefix = next(((s, p) for s, p in _SI if mag >= s), (1.0, ""))
        return scale, prefix + ("B" if kind == "bytes" else "FLOP")
    if kind in ("count", "rate"):
        scale, prefix = next(((s, p) for s, p in _SHORT_SCALE if mag >= s), (1.0, ""))
        return scale, " ".join(x for x in (prefix, unit) if x)
    if kind == "number" and mag >= 10_000:
        return 1e3, "k"
    return 1.0, ""


def _nice_step(span: float, max_ticks: int) -> float:
    raw = span / max(max_ticks - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if mult * power >= raw:
            return mult * power
    return 10.0 * power


def axis_ticks(low: float, high: float, *, max_ticks: int = 6) -> tuple[list[float], list[str]]:
    """At most ``max_ticks`` round values in ``[low, high]`` (already scaled by
    :func:`axis_scale`) and their labels, short (3 significant digits) and evenly apart."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [], []
    if high <= low:
        return [low], [_sig(low, 3)]
    step = _nice_step(high - low, max_ticks)
    values: list[float] = []
    v = math.ceil(low / step - 1e-9) * step
    while v <= high + step * 1e-9 and len(values) < max_ticks:
        values.append(round(v, 12))
        v += step
    return values, [_sig(x, 3) for x in values]
