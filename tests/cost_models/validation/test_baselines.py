"""Simple calculators under the same leave-one-source-out test (cost_models.validation.baselines)."""

from __future__ import annotations

import numpy as np

from cost_models.validation.baselines import constant_mfu_tokens_per_s, held_out_errors_on_grid
from cost_models.validation.train import (
    load_train_measurements,
    measured_tokens_per_s_per_device,
    prepare_row,
)


def _grid_rows() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three publications; a row's prediction at grid value g is g times a base figure.
    A's two rows are right at g = 2, B's two and C's three at g = 4."""
    base = np.array([10.0, 20.0, 10.0, 30.0, 10.0, 40.0, 50.0])
    right_at = np.array([2.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    grid = np.arange(1.0, 6.0)
    pubs = ["A", "A", "B", "B", "C", "C", "C"]
    return base[:, None] * grid[None, :], base * right_at, pubs


def test_a_publication_is_predicted_by_the_fit_on_the_others() -> None:
    predicted, measured, pubs = _grid_rows()
    errors = held_out_errors_on_grid(predicted, measured, pubs)
    # A is predicted at g = 4 (what B and C agree on): twice too fast
    np.testing.assert_allclose(errors[:2], [1.0, 1.0])
    # B is predicted from A and C: C's three rows outweigh A's two, g = 4, exact
    np.testing.assert_allclose(errors[2:4], [0.0, 0.0], atol=1e-12)


def test_a_publication_never_moves_its_own_parameter() -> None:
    predicted, measured, pubs = _grid_rows()
    before = held_out_errors_on_grid(predicted, measured, pubs)
    moved = measured.copy()
    moved[:2] *= 7.0  # A's measurements change; the value A is predicted at must not
    after = held_out_errors_on_grid(predicted, moved, pubs)
    np.testing.assert_allclose((1.0 + after[:2]) * 7.0, 1.0 + before[:2])


def test_constant_mfu_reads_nar21_at_its_own_model_flops_utilisation() -> None:
    """NAR21 Table 1 reports TFLOP/s with recomputation (eq. 3, four passes); the model FLOPs
    are three of them, so MFU = 3/4 x TFLOP/s / peak must give back the measured rate."""
    for label in ("M01", "M10"):
        m = next(x for x in load_train_measurements() if x.label == label)
        row = prepare_row(m)
        measured = measured_tokens_per_s_per_device(m, row.arch)
        mfu = 0.75 * float(m.row["measured_value"]) * 1e12 / row.system.device.peak("fp16")
        predicted = constant_mfu_tokens_per_s(row, np.array([mfu, 2.0 * mfu]))
        assert abs(predicted[0] / measured - 1.0) < 0.03
        assert predicted[1] == 2.0 * predicted[0]
