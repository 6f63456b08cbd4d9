"""A small synthetic problem (a discrete ZDT1-like front) for testing and benchmarking the
search driver without the cost models: two integer parameters, two objectives, optional
failures, NaNs and delays. ZDT1: Zitzler, Deb and Thiele 2000, Evolutionary Computation 8(2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nas.experiment import Constraint
from nas.search.base import Objective, TrialFailed

__all__ = ["ToyProblem", "toy_grid"]


@dataclass(kw_only=True)
class ToyProblem:
    """``x, y`` in ``0..levels-1``; ``f1 = x/L``, ``f2 = g (1 - sqrt(f1/g))``, ``g = 1 + 9 y/L``."""

    levels: int = 101
    fail_every: int = 0  # every n-th evaluation raises (0 = never)
    nan_every: int = 0  # every n-th evaluation returns NaN
    delay_s: float = 0.0
    constrained: bool = False  # adds the constraint f1 >= 0.1
    objectives: tuple[Objective, ...] = (
        Objective(metric="f1", direction="min"),
        Objective(metric="f2", direction="min"),
    )
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)
    evaluator: None = None  # the toy scores candidates itself
    _calls: int = 0

    def __post_init__(self) -> None:
        if self.constrained:
            self.constraints = (Constraint(metric="f1", op=">=", bound=0.1),)

    def suggest(self, trial: Any) -> tuple[int, int]:
        x = trial.suggest_int("x", 0, self.levels - 1)
        y = trial.suggest_int("y", 0, self.levels - 1)
        return int(x), int(y)

    def evaluate(self, candidate: tuple[int, int]) -> dict[str, Any]:
        self._calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_every and self._calls % self.fail_every == 0:
            raise TrialFailed(f"toy failure at call {self._calls}")
        x, y = candidate
        f1, f2 = _zdt(np.array([x]), np.array([y]), self.levels)
        if self.nan_every and self._calls % self.nan_every == 0:
            f2 = np.array([math.nan])
        return {"x": x, "y": y, "f1": float(f1[0]), "f2": float(f2[0])}

    def device_memory_bytes(self, record: Mapping[str, Any]) -> float:
        return 1.0

    def evaluate_grid(self, *, max_candidates: int) -> pd.DataFrame:
        if self.levels**2 > max_candidates:
            raise ValueError(f"toy grid: {self.levels**2:,} candidates exceed {max_candidates:,}")
        grid = toy_grid(self.levels)
        frame = pd.DataFrame({"param_x": grid["x"], "param_y": grid["y"], **grid})
        frame["device_memory_bytes"] = 1.0
        out: pd.DataFrame = frame
        return out

    def replan(self, judged: pd.DataFrame, *, limit: int) -> int:
        """The toy has no parallel plan: its grid values are exact, nothing is re-planned."""
        return 0


def _zdt(x: np.ndarray, y: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    f1 = x / (levels - 1)
    g = 1.0 + 9.0 * y / (levels - 1)
    return f1, g * (1.0 - np.sqrt(f1 / g))


def toy_grid(levels: int) -> dict[str, np.ndarray]:
    """Every candidate of a :class:`ToyProblem` with its objectives (for exact fronts)."""
    x, y = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    f1, f2 = _zdt(x.ravel(), y.ravel(), levels)
    return {"x": x.ravel(), "y": y.ravel(), "f1": f1, "f2": f2}
