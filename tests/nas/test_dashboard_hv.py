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


@pytest.mark.parametrize("m", [2, 3])
def test_exact_at_every_prefix(m: int) -> None:
    values = np.random.default_rng(m).random((3000, m))
    ref = reference_point(values)
    hist = hypervolume_history(values, ref)
    assert hist.method == "exact"
    assert np.all(np.diff(hist.hv) >= 0)  # hypervolume never decreases
    for k in (0, 1, 17, 250, 2999):
        assert hist.hv[k] == pytest.approx(hypervolume(values[: k + 1], ref), rel=1e-12)


def test_hypervolume_matches_a_hand_computed_box() -> None:
    # three points in 3-D against ref (1,1,1): union of boxes by inclusion-exclusion
    pts = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    single = 1.0 * 0.5 * 0.5
    pair = 0.5 * 0.5 * 0.5
    triple = 0.5**3
    assert hypervolume(pts, [1.0, 1.0, 1.0]) == pytest.approx(3 * single - 3 * pair + triple)


def test_points_beyond_reference_add_nothing() -> None:
    values = np.array([[2.0, 2.0], [0.5, 0.5]])
    hist = hypervolume_history(values, np.array([1.0, 1.0]))
    assert hist.hv.tolist() == [0.0, 0.25]
