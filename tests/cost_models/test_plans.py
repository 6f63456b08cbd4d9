"""The architecture-free plan shortlist of cost_models.plans (what vectorised grids try)."""

from __future__ import annotations

import pytest

from cost_models.plan import PlanError
from cost_models.plans import shortlist_plans
from hw_profiles.loader import load_system


def test_automatic_shortlist_keeps_tp_inside_the_scale_up_domain() -> None:
    plans = shortlist_plans(load_system("dgx-h100", 64), combos=None, recomputes=["none"])
    assert {p["tp"] for p in plans} == {1, 2, 4, 8}
    assert {p["pp"] for p in plans} == {1, 2, 4}
    assert all(p["tp"] * p["pp"] * p["dp"] == 64 for p in plans)  # type: ignore[operator]


def test_given_combinations_times_recompute_policies_and_non_dividing_ones_dropped() -> None:
    system = load_system("dgx-h100", 16)
    plans = shortlist_plans(
        system, combos=[{"tp": 2, "pp": 2}, {"tp": 3}], recomputes=["none", "full"]
    )
    assert [(p["tp"], p["pp"], p["dp"], p["recompute"]) for p in plans] == [
        (2, 2, 4, "none"),
        (2, 2, 4, "full"),
    ]
    with pytest.raises(PlanError, match="no plan of the plan set divides num_devices 16"):
        shortlist_plans(system, combos=[{"tp": 3}], recomputes=["none"])
