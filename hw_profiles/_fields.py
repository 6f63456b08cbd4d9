"""Strict reading of one YAML mapping: every error is one line naming the file and field.

Used by the loader for device, system and tier mappings. Unknown keys are errors (no silent
drops), numbers must be finite and non-negative, and every numeric field needs an entry in
the mapping's ``sources:``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hw_profiles.types import ProfileError

# Every number of a profile is in human units (TFLOP/s, GB, TB/s, GB/s, us, W, USD): no real
# part is a millionth of one or ten million of them, so a value outside is a unit slip
# (1e-300 GB/s gave step times of 1e301 s).
HUMAN_MIN = 1e-6
HUMAN_MAX = 1e7


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file; unreadable files and non-mappings are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ProfileError(f"{path}: nested too deeply to be a profile") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ProfileError(f"{path}:{where}: invalid YAML") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of fields at the top level")
    return data


class Fields:
    """Typed access to one mapping. ``where`` prefixes every error (``file: tiers[1]``)."""

    def __init__(self, data: Mapping[str, Any], *, where: str, allowed: set[str]) -> None:
        self.data = data
        self.where = where
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ProfileError(
                f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
            )
        self.numeric: list[str] = []  # numeric fields read, for the sources check

    def error(self, field: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.where}: {field}: {problem}")

    def has(self, field: str) -> bool:
        return field in self.data and self.data[field] is not None

    def raw(self, field: str) -> Any:
        if not self.has(field):
            raise self.error(field, "missing (required)")
        return self.data[field]

    def text(self, field: str) -> str:
        value = self.raw(field)
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def flag(self, field: str) -> bool:
        """An optional ``true``/``false`` field (absent: false)."""
        if not self.has(field):
            return False
        value = self.data[field]
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def choice(self, field: str, allowed: tuple[str, ...]) -> str:
        value = self.text(field)
        if value not in allowed:
            raise self.error(field, f"unknown value {value!r}; allowed: {', '.join(allowed)}")
        return value

    def _check_number(self, field: str, value: Any, *, positive: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"expected a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            bound = "> 0" if positive else ">= 0"
            raise self.error(field, f"must be a finite number {bound}, got {value!r}")
        if number > HUMAN_MAX or 0 < number < HUMAN_MIN:
            raise self.error(field, f"must lie in [{HUMAN_MIN:g}, {HUMAN_MAX:g}] in the file's "
                             f"units (TFLOP/s, GB, TB/s, GB/s, us, W), got {value!r}")  # fmt: skip
        return number

    def number(self, field: str, *, positive: bool = True) -> float:
        number = self._check_number(field, self.raw(field), positive=positive)
        self.numeric.append(field)
        return number

    def fraction(self, field: str) -> float:
        number = self.number(field)
        if number > 1:
            raise self.error(field, f"a fraction must lie in (0, 1], got {number!r}")
        return number

    def integer(self, field: str) -> int:
        value = self.raw(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(field, f"expected a positive integer, got {value!r}")
        self.numeric.append(field)
        return value

    def number_map(self, field: str, allowed: tuple[str, ...]) -> dict[str, float]:
        value = self.raw(field)
        if not isinstance(value, dict) or not value:
            raise self.error(field, "expected a non-empty mapping")
        out: dict[str, float] = {}
        for key, item in value.items():
            if key not in allowed:
                raise self.error(f"{field}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
            out[str(key)] = self._check_number(f"{field}.{key}", item, positive=True)
            self.numeric.append(f"{field}.{key}")
        return out

    def number_list(self, field: str, *, parent: str) -> tuple[float, ...]:
        value = self.raw(field)
        if not isinstance(value, list) or not value:
            raise self.error(f"{parent}.{field}", "expected a non-empty list of numbers")
        return tuple(
            self._check_number(f"{parent}.{field}[{i}]", v, positive=True)
            for i, v in enumerate(value)
        )

    def sources(self) -> dict[str, str]:
        """The ``sources:`` mapping; every numeric field read so far must have an entry
        (``peak_tflops`` covers ``peak_tflops.fp8``), and every entry a field."""
        value = self.raw("sources")
        if not isinstance(value, dict):
            raise self.error("sources", "expected a mapping of field -> source")
        sources = {str(k): str(v) for k, v in value.items()}
        for key, text in sources.items():
            if not text.strip():
                raise self.error(f"sources.{key}", "empty source")
            if key.split(".")[0] not in self.data:
                raise self.error(f"sources.{key}", "names no field of this mapping")
        for field in self.numeric:
            parts = field.split(".")
            if not any(".".join(parts[:i]) in sources for i in range(1, len(parts) + 1)):
                raise self.error("sources", f"no entry for numeric field {field!r}")
        return sources
