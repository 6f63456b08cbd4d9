"""Simple calculators held to the cost model's own test: the same training rows, the same
leave-one-source-out protocol (``bench/bench_vs_calculators.py`` prints them side by side).

* :func:`constant_mfu_tokens_per_s`: the spreadsheet answer, tokens/s per device =
  ``mfu * peak / model FLOPs per token`` with one model-FLOPs utilisation for every run
  (model FLOPs as :func:`cost_models.train.step.model_flops_per_token`: 6 x active matmul
  parameters plus causal attention, PaLM arXiv 2204.02311 appendix B); no communication,
  no memory, no plan.
* :func:`held_out_errors_on_grid`: any calculator with one free parameter, evaluated on a
  grid of it (rows x grid): for each publication, the grid value with the least summed
  ``|log(predicted / measured)|`` over the *other* publications' rows (the loss of
  :mod:`cost_models.validation.train_fit`), and that publication's rows' errors under it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cost_models.train.step import model_flops_per_token
from cost_models.validation.train import PreparedRow
from search_spaces.counts import ArchBatch

__all__ = ["MFU_GRID", "constant_mfu_tokens_per_s", "held_out_errors_on_grid"]

FloatArray = npt.NDArray[np.float64]

# Model-FLOPs utilisation a constant calculator may take: 5% to 95% of peak.
MFU_GRID: FloatArray = np.round(np.arange(0.05, 0.9501, 0.005), 3)


def constant_mfu_tokens_per_s(row: PreparedRow, mfu: FloatArray) -> FloatArray:
    """Tokens/s per device of ``row`` at each ``mfu``, against the peak of the row's training
    precision (``peak_tflops`` of its device profile)."""
    arch = ArchBatch.from_architectures([row.arch])
    per_token_flops = float(model_flops_per_token(arch, seq_len=row.workload.seq_len)[0])
    peak_flops_per_s = row.system.device.peak(row.workload.dtype)
    out: FloatArray = np.asarray(mfu, dtype=np.float64) * peak_flops_per_s / per_token_flops
    return out


def held_out_errors_on_grid(
    predicted: FloatArray, measured: FloatArray, publications: Sequence[str]
) -> FloatArray:
    """Leave-one-source-out relative errors (predicted / measured - 1) of a one-parameter
    calculator: ``predicted[i, g]`` is row ``i`` at grid value ``g``. A publication's rows are
    predicted at the grid value fitted on every other publication's rows."""
    log_err = np.log(np.asarray(predicted, dtype=np.float64) / np.asarray(measured)[:, None])
    pubs = np.asarray(publications)
    out = np.empty(len(pubs))
    for pub in np.unique(pubs):
        mine = pubs == pub
        others = ~mine if (~mine).any() else mine
        best = int(np.argmin(np.abs(log_err[others]).sum(axis=0)))
        out[mine] = np.expm1(log_err[mine, best])
    return out
