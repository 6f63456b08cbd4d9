"""The experiment as a search problem: :class:`ExperimentProblem` implements the search
protocols (:class:`nas.search.base.Problem` and :class:`~nas.search.base.GridProblem`) for
one experiment: it suggests candidates (architecture, hardware point, plan degrees),
evaluates them into flat records (:mod:`nas.problem.record`), evaluates the whole grid
(:mod:`nas.problem.grid_eval`), re-plans its best rows (:mod:`nas.problem.refine`) and
evaluates the reference models (:mod:`nas.problem.references`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hw_profiles.types import System
from nas.experiment import Constraint, Experiment
from nas.problem.grid_eval import evaluate_grid
from nas.problem.hardware import HardwarePoint, check_knobs, hardware_grid, suggest_hardware
from nas.problem.plan_check import check_plan_degrees
from nas.problem.record import Candidate, evaluate_candidate
from nas.problem.references import evaluate_references
from nas.problem.refine import leading_rows, refine_rows
from nas.search.base import Objective, TrialFailed, TrialPruned

if TYPE_CHECKING:
    from nas.evaluators import Evaluator

__all__ = ["ExperimentProblem", "load_systems"]


def load_systems(experiment: Experiment) -> dict[str, System]:
    """The experiment's systems by name, scaled to its device count."""
    from hw_profiles.loader import load_system

    return {
        name: load_system(name, num_devices=experiment.hardware.num_devices)
        for name in experiment.hardware.systems
    }


def _accuracy_key(key: str) -> str:
    """An evaluator's setting (or its name) as the experiment file spells the key."""
    return "accuracy.evaluator" if key == "evaluator" else f"accuracy.settings.{key}"


class ExperimentProblem:
    """The search problem of an experiment (built again in each worker)."""

    def __init__(self, experiment: Experiment) -> None:
        from nas.evaluators import get_evaluator
        from nas.evaluators.base import named_as
        from search_spaces.spaces import SearchSpace, get_space, load_space

        self.experiment = experiment
        overrides = experiment.space_overrides or None
        self.space: SearchSpace
        if experiment.space.endswith((".yaml", ".yml")):
            self.space = load_space(experiment.space, overrides)
        else:
            self.space = get_space(experiment.space, overrides)
        self.systems = load_systems(experiment)
        check_knobs(experiment.hardware, self.systems)
        with named_as(_accuracy_key):
            self.evaluator: Evaluator = get_evaluator(
                experiment.accuracy.evaluator, experiment.accuracy.settings
            )
        self.objectives: tuple[Objective, ...] = tuple(
            Objective(metric=m, direction=d) for m, d in experiment.objectives.items()
        )
        self.constraints: tuple[Constraint, ...] = experiment.parsed_constraints()
        check_plan_degrees(
            experiment,
            device_counts={name: s.num_devices for name, s in self.systems.items()},
            moe="num_experts" in self.space.parameters(),
        )

    # --- Problem protocol -------------------------------------------------------------
    def suggest(self, trial: Any) -> Candidate:
        """Define-by-run: the architecture, the hardware point, then searched degrees."""
        arch = self.space.suggest(trial)
        hardware = suggest_hardware(trial, self.experiment.hardware, self.systems)
        spec = self.experiment.plan
        plan: dict[str, int] = {str(k): v for k, v in spec.fixed.items()}
        for name, choices in spec.searched.items():
            plan[name] = int(trial.suggest_categorical(f"plan_{name}", list(choices)))
        return Candidate(arch=arch, hardware=hardware, plan=plan)

    def evaluate(self, candidate: Candidate) -> dict[str, Any]:
        """The flat record of ``candidate``; evaluator stops and failures become
        :class:`TrialPruned` and :class:`TrialFailed`."""
        from nas.evaluators import EvaluationFailed, Pruned

        try:
            return evaluate_candidate(
                candidate, experiment=self.experiment, evaluator=self.evaluator
            )
        except Pruned as exc:
            raise TrialPruned(str(exc)) from exc
        except EvaluationFailed as exc:
            raise TrialFailed(exc.reason) from exc

    def device_memory_bytes(self, record: Mapping[str, Any]) -> float:
        """Memory of one device of the record's (scaled) system, bytes."""
        return float(record["device_memory_bytes"])

    # --- GridProblem protocol ---------------------------------------------------------
    def evaluate_grid(
        self, *, max_candidates: int, on_chunk: Callable[[int, int], None] | None = None
    ) -> pd.DataFrame:
        """Every candidate of the space on every hardware point (exhaustive backend);
        ``on_chunk(done, total)`` reports progress."""
        return evaluate_grid(
            experiment=self.experiment,
            space=self.space,
            evaluator=self.evaluator,
            points=self.hardware_points(),
            max_candidates=max_candidates,
            on_chunk=on_chunk,
        )

    def replan(self, judged: pd.DataFrame, *, limit: int) -> int:
        """Re-plan the leading rows of a judged grid with the full planner (``plan: auto``
        only; :mod:`nas.problem.refine`); how many rows were re-planned."""
        if limit <= 0 or self.experiment.plan.mode != "auto":
            return 0
        rows = leading_rows(judged, objectives=self.objectives, limit=limit)
        return refine_rows(
            judged, rows, space=self.space, points=self.hardware_points(), evaluate=self.evaluate
        )

    # --- the rest ---------------------------------------------------------------------
    def evaluate_references(self, names: Sequence[str] | None) -> pd.DataFrame:
        """Catalogue models under this experiment (:mod:`nas.problem.references`)."""
        return evaluate_references(
            names, experiment=self.experiment, systems=self.systems, evaluator=self.evaluator
        )

    def hardware_points(self) -> list[HardwarePoint]:
        """Every hardware point of the experiment (systems x knob choices)."""
        return hardware_grid(self.experiment.hardware, self.systems)
