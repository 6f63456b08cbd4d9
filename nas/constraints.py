"""Constraints of an experiment: ``metric op bound`` parsed from ``"<= 0.9 * device"`` or
``true``/``false`` (a boolean metric takes a boolean, any other metric a comparison)."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from nas.bounds import BOOLEAN_METRICS

__all__ = ["Constraint", "ConstraintError", "parse_constraint"]


class ConstraintError(ValueError):
    """An invalid constraint; one line naming ``constraints.<metric>``."""


class Constraint(BaseModel):
    """``metric op bound`` where the bound may be relative: ``0.9 * device`` is 0.9 of the
    device memory of the candidate's system (after any memory-size knob)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: str
    op: Literal["<=", ">=", "=="]
    bound: float
    relative_to: Literal["device"] | None = None

    def describe(self) -> str:
        rel = f" * {self.relative_to}" if self.relative_to else ""
        return f"{self.metric} {self.op} {self.bound:g}{rel}"


_BOUND_RE = re.compile(
    r"^\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:\*\s*(\w+))?\s*$"
)


def parse_constraint(metric: str, spec: object) -> Constraint:
    """``"<= 0.05"``, ``">= 1e3"``, ``"<= 0.9 * device"`` or ``true``/``false``."""
    where = f"constraints.{metric}"
    boolean = metric in BOOLEAN_METRICS
    if isinstance(spec, bool):
        if not boolean:
            raise ConstraintError(
                f"{where}: a numeric metric takes a comparison such as '<= 1e9'; true/false "
                f"only for the boolean metrics ({', '.join(BOOLEAN_METRICS)})"
            )
        return Constraint(metric=metric, op="==", bound=float(spec))
    if boolean:
        raise ConstraintError(f"{where}: a boolean metric takes true or false, got {spec!r}")
    if isinstance(spec, (int, float)):
        raise ConstraintError(f"{where}: give an operator, e.g. '<= {spec}'")
    match = _BOUND_RE.match(str(spec))
    if match is None:
        raise ConstraintError(
            f"{where}: expected '<= NUMBER', '>= NUMBER', '<= NUMBER * device' or true/false, "
            f"got {spec!r}"
        )
    op, number, rel = match.groups()
    if not math.isfinite(float(number)):
        raise ConstraintError(f"{where}: the bound must be a finite number, got {number}")
    if rel is not None and rel != "device":
        raise ConstraintError(f"{where}: relative bound must be '* device', got '* {rel}'")
    return Constraint(
        metric=metric,
        op="<=" if op in ("<=", "<") else (">=" if op in (">=", ">") else "=="),
        bound=float(number),
        relative_to="device" if rel else None,
    )
