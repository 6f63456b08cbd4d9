"""Values made plain for JSON: numpy scalars as Python numbers, NaN and infinities as null
(strict JSON readers refuse ``NaN``). One definition for trial records, results files and
``--json`` output."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe", "jsonable", "plain_value"]


def plain_value(value: Any) -> Any:
    """One value as plain JSON: a numpy scalar as a Python number, NaN and inf as None."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    """A flat trial record with every value made plain (:func:`plain_value`)."""
    return {key: plain_value(value) for key, value in record.items()}


def json_safe(value: Any) -> Any:
    """``value`` with every nested value made plain (dicts, lists and tuples walked)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return plain_value(value)
