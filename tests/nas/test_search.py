"""Pareto fronts, hypervolume and the backend registry."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search.base import BackendUnavailable, get_backend, list_backends
from nas.search.pareto import hypervolume, non_dominated, normalise, to_minimisation


def _brute_front(x: np.ndarray) -> np.ndarray:
    le = np.all(x[None, :, :] <= x[:, None, :], axis=2)
    lt = np.any(x[None, :, :] < x[:, None, :], axis=2)
    return ~np.any(le & lt, axis=1)


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_non_dominated_matches_brute_force(dims: int) -> None:
    rng = np.random.default_rng(dims)
    # integers make ties and duplicates common
    x = rng.integers(0, 12, size=(1500, dims)).astype(float)
    assert np.array_equal(non_dominated(x), _brute_front(x))


def test_non_dominated_ignores_nan_rows() -> None:
    x = np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 0.0]])
    assert non_dominated(x).tolist() == [True, False, True]


def test_hypervolume_known_values() -> None:
    assert hypervolume([[0.5, 0.5]], [1, 1]) == pytest.approx(0.25)
    # two points: union of two rectangles 1x0.5 + 0.5x1 - overlap 0.5x0.5
    assert hypervolume([[0.0, 0.5], [0.5, 0.0]], [1, 1]) == pytest.approx(0.75)
    assert hypervolume([[0.5, 0.5, 0.5]], [1, 1, 1]) == pytest.approx(0.125)
    # dominated and out-of-box points add nothing
    assert hypervolume([[0.5, 0.5], [0.7, 0.7], [2.0, 0.0]], [1, 1]) == pytest.approx(0.25)


def test_hypervolume_3d_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    pts = rng.random((30, 3))
    samples = rng.random((200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    assert hypervolume(pts, [1, 1, 1]) == pytest.approx(dominated.mean(), abs=0.01)


def test_to_minimisation_and_normalise() -> None:
    v = to_minimisation([[1.0, 2.0]], ["min", "max"])
    assert v.tolist() == [[1.0, -2.0]]
    n = normalise(np.array([[2.0, 5.0]]), ideal=np.array([0.0, 5.0]), nadir=np.array([4.0, 5.0]))
    assert n.tolist() == [[0.5, 0.0]]


def test_registry_lists_every_backend_and_rejects_unknown_names() -> None:
    backends = list_backends()
    assert list(backends) == ["exhaustive", "optuna", "ray"]
    assert all(isinstance(d, str) and d and "\n" not in d for d in backends.values())
    with pytest.raises(BackendUnavailable, match="known: exhaustive, optuna, ray"):
        get_backend("hyperopt")
