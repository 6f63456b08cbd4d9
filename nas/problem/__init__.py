"""The experiment as a search problem: candidates, their flat trial records, the hardware
dimension, the vectorised grid, re-planning and reference models.

:class:`ExperimentProblem` is what ``nas run`` hands to a search backend; it implements the
protocols of :mod:`nas.search.base`, which never imports this package (``docs/design.md``).
"""

from __future__ import annotations

from nas.problem.hardware import HardwarePoint, scale_system
from nas.problem.problem import ExperimentProblem, load_systems
from nas.problem.record import Candidate, evaluate_candidate, flatten_report

__all__ = [
    "Candidate",
    "ExperimentProblem",
    "HardwarePoint",
    "evaluate_candidate",
    "flatten_report",
    "load_systems",
    "scale_system",
]
