"""Plan degrees an experiment fixes or searches, checked against its systems and workload
before the run directory is made: a value no plan can use would fail every trial it is in.

* ``tp``, ``pp``, ``dp``, ``cp``, ``ep``, ``dp_replicate`` split the devices: ``tp * pp * dp *
  cp`` is the device count, ``ep`` divides ``dp * cp * tp`` and ``dp_replicate`` divides
  ``dp`` (:class:`cost_models.plan.ParallelPlan`), so each divides the device count. A
  fixed degree must divide that of every system of the experiment (it is in every trial),
  a searched value that of at least one.
* ``ep`` above 1 needs an MoE model: a space without ``num_experts`` allows only 1.
* ``micro_batch`` (training) divides the global batch: ``global_batch`` is a multiple of
  ``micro_batch * dp``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from nas.experiment import Experiment, TrainWorkload

__all__ = ["DEVICE_DEGREES", "check_plan_degrees"]

DEVICE_DEGREES = ("tp", "pp", "dp", "cp", "ep", "dp_replicate")
_SHOWN = 16  # divisors listed in a message; a larger set ends in "..."


def check_plan_degrees(
    experiment: Experiment, *, device_counts: Mapping[str, int], moe: bool
) -> None:
    """Raise ``ValueError`` naming ``plan.fixed.<key>`` / ``plan.searched.<key>`` and the
    allowed values for a degree that no plan of the experiment can use."""
    plan = experiment.plan
    lists = {"fixed": {k: [v] for k, v in plan.fixed.items()}, "searched": plan.searched}
    for where, given in lists.items():
        for key, values in given.items():
            for value in values:
                problem = _problem(
                    str(key), value, experiment, device_counts=device_counts, moe=moe, where=where
                )
                if problem is not None:
                    raise ValueError(f"plan.{where}.{key}: {value} {problem}")


def _problem(
    key: str,
    value: int,
    experiment: Experiment,
    *,
    device_counts: Mapping[str, int],
    moe: bool,
    where: str,
) -> str | None:
    """Why ``value`` of ``key`` can never be used, or None."""
    if key == "ep" and value > 1 and not moe:
        return f"needs MoE models and the space {experiment.space} has none; allowed: 1"
    if key in DEVICE_DEGREES:
        counts = sorted(set(device_counts.values()))
        fits = [n % value == 0 for n in counts]
        every = where == "fixed"  # a fixed degree is in every trial, on every system
        if all(fits) or (not every and any(fits)):
            return None
        allowed = _listed(_divisors(counts, every=every))
        return f"{_not_dividing(device_counts, every=every)}; allowed: {allowed}"
    workload = experiment.workload
    if key == "micro_batch" and isinstance(workload, TrainWorkload):
        batch = workload.global_batch
        if batch % value:
            return (
                f"does not divide the global batch of {batch} sequences "
                f"(workload.global_batch_tokens / workload.seq_len); "
                f"allowed: {_listed(_divisors([batch], every=True))}"
            )
    return None


def _not_dividing(device_counts: Mapping[str, int], *, every: bool) -> str:
    if len(device_counts) == 1:
        ((system, n),) = device_counts.items()
        return f"does not divide num_devices {n} ({system})"
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(device_counts.items()))
    if every:
        return f"does not divide num_devices of every system ({shown})"
    return f"divides num_devices of no system ({shown})"


def _divisors(counts: list[int], *, every: bool) -> list[int]:
    """The divisors of every count (``every``) or of any count, ascending."""
    sets = []
    for n in counts:
        small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
        sets.append({*small, *(n // d for d in small)})
    joined = set.intersection(*sets) if every else set.union(*sets)
    return sorted(joined)


def _listed(values: list[int]) -> str:
    head = ", ".join(map(str, values[:_SHOWN]))
    return head + (f", ... ({len(values)} values)" if len(values) > _SHOWN else "")
