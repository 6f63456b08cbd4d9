"""Explanations around a training estimate that need more than one system size: the smallest
device count of a system on which some plan fits memory (``nas estimate`` prints it when
nothing fits on the count asked for)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MEMORY_HEADROOM", "smallest_fitting_devices"]

# Share of device memory a plan may use in `nas estimate`. A modelling choice, not a measured
# figure: the allocator's fragmentation, communication buffers and framework workspace are not
# in the memory model, so a plan at 98.7% of device memory (seen with 1.0) would not run.
# Validation against published runs keeps 1.0 (`nas validate`), as those runs did run.
MEMORY_HEADROOM = 0.9


def smallest_fitting_devices(
    arch: Any,
    system_name: str,
    workload: Any,
    *,
    fixed: Mapping[str, Any],
    options: Any,
    memory_headroom: float,
    start: int,
) -> int | None:
    """The smallest device count above ``start`` (doubling, whole nodes, up to the system's
    maximum) at which the planner finds a plan that fits; ``None`` when none does."""
    from cost_models.plan import PlanError
    from cost_models.train.planner import plan_training
    from hw_profiles.loader import load_system

    base = load_system(system_name)
    per_node = base.devices_per_node
    n = max(per_node, start * 2)
    # pinned degrees stay; the data-parallel degree and the batch follow the device count
    keep = {k: v for k, v in fixed.items() if k not in ("dp", "global_batch")}
    while n <= base.max_devices:
        try:
            choice = plan_training(
                arch,
                load_system(system_name, n),
                workload,
                fixed=keep,
                options=options,
                memory_headroom=memory_headroom,
            )
        except PlanError:
            choice = None
        if choice is not None and choice.best_fits:
            return n
        n *= 2
    return None
