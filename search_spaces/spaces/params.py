"""Searched parameters of a space: a domain (a stepped range or explicit choices) per name.

Domain syntax, in a space YAML file and in overrides::

    num_layers: {range: [8, 96], step: 4}     # inclusive range; step defaults to 1
    head_dim: {choices: [64, 128]}            # explicit values
    ffn_ratio: 4.0                            # a single value: the parameter is fixed

Overrides (``space_overrides`` in an experiment, ``--override`` style mappings) accept the
same forms plus a bare list:

* a 2-list ``[low, high]`` on a parameter whose domain is a range replaces the range bounds
  and keeps its step (``num_layers: [16, 64]``);
* any other list is the explicit choices (``num_experts: [8, 16, 64, 128]``); on a
  parameter declared with choices, a 2-list is two choices;
* a scalar fixes the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from search_spaces.errors import SpecError

__all__ = ["Param", "parse_param"]


Kind = Literal["int", "float"]
Number = int | float


@dataclass(frozen=True, kw_only=True)
class Param:
    """The domain of one searched parameter. ``choices`` non-empty means explicit values;
    otherwise the inclusive range ``low, low + step, ..., <= high``."""

    name: str
    kind: Kind
    minimum: Number  # smallest value the parameter may take (0 or 1 for counts)
    choices: tuple[Number, ...] = ()
    low: Number = 0
    high: Number = 0
    step: Number = 1

    def __post_init__(self) -> None:
        values = self.choices if self.choices else (self.low, self.high, self.step)
        for v in values:
            self._check_number(v)
        if self.choices:
            if len(set(self.choices)) != len(self.choices):
                raise SpecError(f"{self.name}: choices must be distinct, got {list(self.choices)}")
            for v in self.choices:
                self._check_min(v)
            return
        self._check_min(self.low)
        if self.step <= 0:
            raise SpecError(f"{self.name}: step must be positive, got {self.step}")
        if self.high < self.low:
            raise SpecError(f"{self.name}: range high {self.high} is below low {self.low}")

    def _check_number(self, v: object) -> None:
        ok = isinstance(v, int) if self.kind == "int" else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not math.isfinite(float(v)):  # type: ignore[arg-type]
            want = "integers" if self.kind == "int" else "numbers"
            raise SpecError(f"{self.name}: values must be {want}, got {v!r}")

    def _check_min(self, v: Number) -> None:
        if v < self.minimum:
            what = "positive" if self.minimum > 0 else "non-negative"
            raise SpecError(f"{self.name}: values must be {what} (>= {self.minimum}), got {v!r}")

    @property
    def is_range(self) -> bool:
        return not self.choices

    @property
    def count(self) -> int:
        if self.choices:
            return len(self.choices)
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    @property
    def is_fixed(self) -> bool:
        return self.count == 1

    @property
    def max_value(self) -> Number:
        return max(self.choices) if self.choices else self.range_high

    @property
    def min_value(self) -> Number:
        return min(self.choices) if self.choices else self.low

    @property
    def range_high(self) -> Number:
        """The largest value the range reaches (``high`` aligned down to the step)."""
        return self._at(self.count - 1)

    def _at(self, i: int) -> Number:
        v = self.low + i * self.step
        return int(v) if self.kind == "int" else round(float(v), 10)

    def values(self) -> npt.NDArray[np.float64]:
        """Every value of the domain, in order, as float64."""
        if self.choices:
            return np.asarray(self.choices, dtype=np.float64)
        grid = self.low + self.step * np.arange(self.count, dtype=np.float64)
        return grid if self.kind == "int" else np.round(grid, 10)

    def contains(self, value: float) -> bool:
        """Whether ``value`` is one of the domain's values (float tolerance 1e-9)."""
        if self.choices:
            return any(math.isclose(value, c, rel_tol=1e-9, abs_tol=1e-9) for c in self.choices)
        k = (value - self.low) / self.step
        return -1e-9 <= k <= self.count - 1 + 1e-9 and abs(k - round(k)) < 1e-6

    def first(self) -> Number:
        return self.choices[0] if self.choices else self.low

    def describe(self) -> str:
        if self.choices:
            return "choices " + ", ".join(str(v) for v in self.choices)
        return f"range [{self.low}, {self.high}] step {self.step}"

    def to_spec(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"range": [self.low, self.high], "step": self.step}


def parse_param(
    name: str, spec: object, *, kind: Kind, minimum: Number, current: Param | None = None
) -> Param:
    """Parse a domain (see the module docstring). ``current`` is the domain being overridden."""
    if isinstance(spec, Mapping):
        return _parse_mapping(name, spec, kind=kind, minimum=minimum, current=current)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        items = list(spec)
        if not items:
            raise SpecError(f"{name}: needs at least one value")
        if current is not None and current.is_range and len(items) == 2:
            return Param(
                name=name,
                kind=kind,
                minimum=minimum,
                low=items[0],
                high=items[1],
                step=current.step,
            )
        return Param(name=name, kind=kind, minimum=minimum, choices=tuple(items))
    return Param(name=name, kind=kind, minimum=minimum, choices=(spec,))  # type: ignore[arg-type]


def _parse_mapping(
    name: str, spec: Mapping[str, Any], *, kind: Kind, minimum: Number, current: Param | None
) -> Param:
    keys = set(spec)
    if keys == {"choices"}:
        choices = spec["choices"]
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise SpecError(f"{name}.choices: must be a non-empty list, got {choices!r}")
        return Param(name=name, kind=kind, minimum=minimum, choices=tuple(choices))
    if "range" in keys and keys <= {"range", "step"}:
        bounds = spec["range"]
        if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
            raise SpecError(f"{name}.range: must be [low, high], got {bounds!r}")
        default_step = current.step if current is not None and current.is_range else 1
        return Param(
            name=name,
            kind=kind,
            minimum=minimum,
            low=bounds[0],
            high=bounds[1],
            step=spec.get("step", default_step),
        )
    raise SpecError(
        f"{name}: a domain mapping takes either 'choices' or 'range' (+ optional 'step'); "
        f"got keys {sorted(keys)}"
    )
