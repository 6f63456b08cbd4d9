"""Hypervolume history of the dashboard against exact hypervolumes of each prefix."""

from __future__ import annotations

import numpy as np
import pytest

from nas.dashboard._hv import hypervolume_history, records, reference_point
from nas.search.pareto import hypervolume


def _brute_records(values: np.ndarray) -> list[int]:
    out = []
    for i in range(len(values)):
        earlier = values[:i]
        dominated = np.any(
            np.all(earlier <= values[i], axis=1) & np.any(earlier < values[i], axis=1)
        )
        if not dominated:
            out.append(i)
    return out


@pytest.mark.parametrize("m", [2, 3])
def test_records_match_brute_force(m: int) -> None:
    values = np.random.default_rng(m).random((1300, m))  # > 2 chunks
    values[[5, 700]] = np.nan  # non-finite rows are never records
    expect = [i for i in _brute_records(np.nan_to_num(values, nan=np.inf)) if i not in (5, 700)]
    assert records(values).tolist() == expect


def test_two_objectives_exact_at_every_prefix() -> None:
    values = np.random.default_rng(0).random((3000, 2))
    ref = reference_point(values)
    hist = hypervolume_history(values, ref)
    assert hist.method == "exact"
    assert np.all(np.diff(hist.hv) >= 0)  # hypervolume never decreases
    for k in (0, 1, 17, 250, 2999):
        assert hist.hv[k] == pytest.approx(hypervolume(values[: k + 1], ref), rel=1e-12)


def test_three_objectives_monte_carlo_within_error() -> None:
    values = np.random.default_rng(1).random((2000, 3))
    ref = reference_point(values)
    hist = hypervolume_history(values, ref, samples=1 << 14, seed=3)
    assert hist.method.startswith("Monte Carlo")
    for k in (20, 300, 1999):
        exact = hypervolume(values[: k + 1], ref)
        # 4 standard errors: fails by chance with probability ~6e-5 per check
        assert abs(hist.hv[k] - exact) <= 4 * hist.stderr[k] + 1e-12
        assert hist.stderr[k] < 0.01 * exact


def test_points_beyond_reference_add_nothing() -> None:
    values = np.array([[2.0, 2.0], [0.5, 0.5]])
    hist = hypervolume_history(values, np.array([1.0, 1.0]))
    assert hist.hv.tolist() == [0.0, 0.25]
