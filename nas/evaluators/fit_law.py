"""Fit a Chinchilla-form law to (params, tokens, loss) results, and evaluate with it.

Fitting follows Hoffmann et al. 2022 (arXiv 2203.15556, appendix D.2) as re-done by
Besiroglu et al. 2024 (arXiv 2404.10102, section 2): minimise the *sum* of Huber losses
(delta = 1e-3) of the log-space residual ``LSE(a - alpha ln N, b - beta ln D, e) - ln L``
(A = e^a, B = e^b, E = e^e) with L-BFGS, started from the grid alpha, beta in {0, 0.5, .., 2},
e in {-1, -0.5, .., 1}, a, b in {0, 5, .., 25}. To keep it fast we run L-BFGS from the
``starts`` best grid points (by objective) rather than from all 4,500.

Results files are read by :mod:`nas.evaluators.fit_results`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from nas.evaluators.base import (
    EvaluatorError,
    ReportFn,
    batch_tokens,
    check_settings,
    evaluate_one,
    perplexity,
)
from nas.evaluators.fit_results import Results, read_results
from nas.evaluators.laws import PARAMS_CONVENTIONS, ChinchillaLaw, ParamsConvention
from search_spaces import counts
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, FloatArray

__all__ = [
    "FitReport",
    "FittedLawEvaluator",
    "Results",
    "fit_chinchilla",
    "fit_law",
    "load_law",
    "params_by_convention",
    "read_results",
    "relative_errors",
    "save_law",
]


HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, appendix D.2


def _objective(
    theta: FloatArray, ln_n: FloatArray, ln_d: FloatArray, ln_l: FloatArray
) -> tuple[float, FloatArray]:
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * ln_n, b - beta * ln_d, np.full_like(ln_n, e)])
    top = terms.max(axis=0)
    w = np.exp(terms - top)
    s = w.sum(axis=0)
    r = top + np.log(s) - ln_l
    w /= s
    absr = np.abs(r)
    value = np.where(
        absr <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA)
    ).sum()
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
    grad = np.array(
        [
            (g * w[0]).sum(),
            (g * w[1]).sum(),
            (g * w[2]).sum(),
            -(g * w[0] * ln_n).sum(),
            -(g * w[1] * ln_d).sum(),
        ]
    )
    return float(value), grad


def _grid() -> FloatArray:
    axes = (
        np.arange(0, 30, 5.0),
        np.arange(0, 30, 5.0),
        np.arange(-1, 1.5, 0.5),
        np.arange(0, 2.5, 0.5),
        np.arange(0, 2.5, 0.5),
    )
    return np.array(list(itertools.product(*axes)), dtype=np.float64)  # (a, b, e, alpha, beta)


def _grid_values(
    grid: FloatArray, ln_n: FloatArray, ln_d: FloatArray, ln_l: FloatArray
) -> FloatArray:
    """The objective at every grid point at once (vectorised form of :func:`_objective`)."""
    a, b, e, alpha, beta = (grid[:, i : i + 1] for i in range(5))
    terms = np.stack(
        [a - alpha * ln_n, b - beta * ln_d, np.broadcast_to(e, (len(grid), ln_n.size))]
    )
    r = np.logaddexp.reduce(terms, axis=0) - ln_l
    absr = np.abs(r)
    huber = np.where(absr <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA))
    out: FloatArray = huber.sum(axis=1)
    return out


def _lbfgs_from(
    starts: FloatArray,
    bounds: list[tuple[float, float]],
    ln_n: FloatArray,
    ln_d: FloatArray,
    ln_l: FloatArray,
) -> tuple[float, FloatArray]:
    """Run L-BFGS-B from each start; return the best (objective, theta)."""
    best: tuple[float, FloatArray] | None = None
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    for x0 in np.clip(starts, lo, hi):
        res = minimize(
            _objective,
            x0,
            args=(ln_n, ln_d, ln_l),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12},
        )
        if best is None or res.fun < best[0]:
            best = (float(res.fun), np.asarray(res.x, dtype=np.float64))
    assert best is not None
    return best


def fit_chinchilla(
    results: Results,
    *,
    starts: int = 24,
    name: str = "fitted",
    params_convention: ParamsConvention = "active_non_embedding",
    source: str = "",
) -> ChinchillaLaw:
    """Fit ``L = E + A/N^alpha + B/D^beta`` (Huber on log residuals, L-BFGS, grid starts)."""
    if len(results) < 5:
        raise EvaluatorError(
            f"results: need at least 5 rows to fit 5 coefficients, got {len(results)}"
        )
    sizes = len(np.unique(results.params))
    if sizes < 3:
        raise EvaluatorError(
            f"results: params take {sizes} distinct value(s); the A/N^alpha term needs runs of "
            "at least 3 model sizes (vary --width-factor / --depth-factor)"
        )
    ln_n, ln_d, ln_l = np.log(results.params), np.log(results.tokens), np.log(results.loss)
    grid = _grid()
    values = _grid_values(grid, ln_n, ln_d, ln_l)
    bounds = [(-20.0, 80.0), (-20.0, 80.0), (-10.0, 5.0), (1e-3, 4.0), (1e-3, 4.0)]
    with threadpool_limits(limits=1):  # tiny problems: BLAS threads only add contention
        best = _lbfgs_from(
            grid[np.argsort(values, kind="stable")[:starts]], bounds, ln_n, ln_d, ln_l
        )
    a, b, e, alpha, beta = best[1]
    return ChinchillaLaw(
        name=name,
        E=math.exp(e),
        A=math.exp(a),
        B=math.exp(b),
        alpha=float(alpha),
        beta=float(beta),
        params_convention=params_convention,
        source=source or "fitted by nas fit-law",
        valid_params=(float(results.params.min()), float(results.params.max())),
        valid_tokens=(float(results.tokens.min()), float(results.tokens.max())),
    )


def relative_errors(law: ChinchillaLaw, results: Results) -> FloatArray:
    out: FloatArray = law.loss(results.params, results.tokens) / results.loss - 1.0
    return out


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """A fitted law and its errors: ``rows`` fitted, root-mean-square and worst relative
    loss error on them (fractions, not %), and the RMS relative error on ``heldout_rows``
    rows of a fit made without them."""

    law: ChinchillaLaw  # fitted on all rows
    rows: int
    rms_rel_error: float  # of the all-rows fit on its own rows
    max_rel_error: float
    heldout_rows: int
    heldout_rms_rel_error: float  # law fitted without the held-out rows, tested on them

    def to_dict(self) -> dict[str, Any]:
        law = self.law
        return {
            "law": law.name,
            "form": "L = E + A / N^alpha + B / D^beta",
            "E": law.E,
            "A": law.A,
            "B": law.B,
            "alpha": law.alpha,
            "beta": law.beta,
            "params_convention": law.params_convention,
            "source": law.source,
            "valid_params": list(law.valid_params),
            "valid_tokens": list(law.valid_tokens),
            "fit": {
                "rows": self.rows,
                "rms_rel_error": self.rms_rel_error,
                "max_rel_error": self.max_rel_error,
                "heldout_rows": self.heldout_rows,
                "heldout_rms_rel_error": self.heldout_rms_rel_error,
                "holdout": "rows with the largest params",
                "huber_delta": HUBER_DELTA,
            },
        }


def fit_law(
    results: Results,
    *,
    holdout_fraction: float = 0.25,
    source: str = "",
    params_convention: ParamsConvention = "active_non_embedding",
) -> FitReport:
    """Fit on all rows; estimate the extrapolation error by refitting without the
    ``holdout_fraction`` of rows with the largest params and predicting them."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise EvaluatorError(f"holdout_fraction: must be in [0, 1), got {holdout_fraction!r}")
    law = fit_chinchilla(results, source=source, params_convention=params_convention)
    err = relative_errors(law, results)
    n_hold = round(holdout_fraction * len(results))
    held_rms = float("nan")
    if n_hold and len(results) - n_hold >= 5:
        order = np.argsort(results.params, kind="stable")
        hold = np.zeros(len(results), dtype=bool)
        hold[order[-n_hold:]] = True
        small = fit_chinchilla(results.take(~hold), params_convention=params_convention)
        held_rms = float(np.sqrt(np.mean(relative_errors(small, results.take(hold)) ** 2)))
    else:
        n_hold = 0
    return FitReport(
        law=law,
        rows=len(results),
        rms_rel_error=float(np.sqrt(np.mean(err**2))),
        max_rel_error=float(np.max(np.abs(err))),
        heldout_rows=n_hold,
        heldout_rms_rel_error=held_rms,
    )


# What save_law writes (FitReport.to_dict); a law file with another key has a typo in it.
LAW_FILE_KEYS = ("law", "form", "E", "A", "B", "alpha", "beta", "params_convention", "source",
                 "valid_params", "valid_tokens", "fit")  # fmt: skip


def save_law(report: FitReport, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(report.to_dict(), sort_keys=False))


def load_law(path: str | Path) -> ChinchillaLaw:
    """Load a law saved by :func:`save_law` (``nas fit-law --out``)."""
    p = Path(path)
    if not p.is_file():
        raise EvaluatorError(f"fitted_law.path: {p}: file not found")
    from nas.safe_yaml import YamlFileError, load_yaml_file

    try:
        data = load_yaml_file(p)
    except YamlFileError as exc:
        raise EvaluatorError(str(exc)) from None
    if not isinstance(data, dict):
        raise EvaluatorError(f"{p}: must hold a mapping")
    unknown = sorted(str(k) for k in data if k not in LAW_FILE_KEYS)
    if unknown:
        raise EvaluatorError(f"{p}: {unknown[0]}: unknown key; allowed: {', '.join(LAW_FILE_KEYS)}")
    for k in ("E", "A", "B", "alpha", "beta"):
        value = data.get(k)
        if value is None:
            raise EvaluatorError(f"{p}: {k}: required number is missing")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise EvaluatorError(f"{p}: {k}: must be a finite number, got {value!r}")
    conv = data.get("params_convention", "active_non_embedding")
    if conv not in PARAMS_CONVENTIONS:
        raise EvaluatorError(
            f"{p}: params_convention: must be one of {', '.join(PARAMS_CONVENTIONS)}"
        )
    vp = _range(data.get("valid_params", [0, math.inf]), f"{p}: valid_params")
    vt = _range(data.get("valid_tokens", [0, math.inf]), f"{p}: valid_tokens")
    return ChinchillaLaw(
        name=str(data.get("law", "fitted")),
        E=float(data["E"]),
        A=float(data["A"]),
        B=float(data["B"]),
        alpha=float(data["alpha"]),
        beta=float(data["beta"]),
        params_convention=conv,
        source=str(data.get("source", p)),
        valid_params=vp,
        valid_tokens=vt,
    )


def _range(raw: Any, where: str) -> tuple[float, float]:
    """``[low, high]`` with 0 <= low <= high (``.inf`` allowed for high)."""
    ok = isinstance(raw, list) and len(raw) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    if not ok or not 0 <= raw[0] <= raw[1]:
        raise EvaluatorError(f"{where}: expected [low, high] with 0 <= low <= high, got {raw!r}")
    return float(raw[0]), float(raw[1])


def params_by_convention(b: ArchBatch, convention: str) -> FloatArray:
    if convention == "total":
        return counts.total_params(b)
    if convention == "non_embedding":
        return counts.non_embedding_params(b)
    if convention == "active":
        return counts.active_params(b)
    out: FloatArray = counts.active_params(b) - counts.embedding_params(b)
    return out


@dataclass(frozen=True, kw_only=True)
class FittedLawEvaluator:
    """Evaluate with a law saved by ``nas fit-law --out FILE`` (setting ``path``)."""

    law: ChinchillaLaw
    name: str = "fitted_law"
    vectorised: bool = True

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FittedLawEvaluator:
        check_settings("fitted_law", settings, {"path": None})
        if "path" not in settings:
            raise EvaluatorError(
                "fitted_law.path: required setting is missing (a nas fit-law --out file)"
            )
        return cls(law=load_law(settings["path"]))

    def evaluate_batch(self, batch: ArchBatch, *, tokens: FloatArray) -> dict[str, FloatArray]:
        d, valid = batch_tokens(batch, tokens)
        n = params_by_convention(batch, self.law.params_convention)
        loss = np.where(valid, self.law.loss(n, np.where(valid, d, 1.0)), np.nan)
        return {"loss": loss, "perplexity": perplexity(loss), "law_params": n, "tokens": d}

    def evaluate(
        self, arch: Architecture, *, tokens: float, report: ReportFn | None = None
    ) -> dict[str, float]:
        return evaluate_one(self.evaluate_batch, arch, tokens)
