"""The accuracy-evaluator plug-in point: protocol, errors, registry and hardware-aware tokens.

An evaluator turns an :class:`Architecture` trained on ``tokens`` tokens into a predicted or
measured validation loss (nats per token). Analytical evaluators are vectorised over an
:class:`ArchBatch`; ``proxy_train`` really trains a scaled-down model and is scalar only.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, FloatArray

__all__ = [
    "EvaluationFailed",
    "Evaluator",
    "EvaluatorError",
    "Pruned",
    "ReportFn",
    "batch_tokens",
    "check_settings",
    "evaluate_one",
    "get_evaluator",
    "list_evaluators",
    "named_as",
    "perplexity",
    "tokens_from_budget",
]


ReportFn = Callable[[int, float], bool]


class EvaluatorError(ValueError):
    """A bad evaluator name, setting or input; one line naming it and the allowed values."""


class EvaluationFailed(RuntimeError):
    """A run that diverged or produced NaN; ``reason`` says why. Never reported as a loss."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Pruned(RuntimeError):
    """Raised when ``report(step, val_loss)`` asked a run to stop early."""

    def __init__(self, step: int, val_loss: float) -> None:
        super().__init__(f"pruned at step {step} (val loss {val_loss:.4f})")
        self.step = step
        self.val_loss = val_loss


@runtime_checkable
class Evaluator(Protocol):
    """Predicts or measures the validation loss of an architecture."""

    name: str
    vectorised: bool  # True when evaluate_batch is cheap (analytical)

    def evaluate(
        self, arch: Architecture, *, tokens: float, report: ReportFn | None = None
    ) -> dict[str, float]:
        """At least ``loss`` (nats/token) and ``perplexity``; may raise Pruned/EvaluationFailed."""
        ...

    def evaluate_batch(self, batch: ArchBatch, *, tokens: FloatArray) -> dict[str, FloatArray]:
        """Vectorised form; analytical evaluators only."""
        ...


# name -> (module, factory attribute). Imported lazily so that torch loads only for proxy_train.
_REGISTRY: dict[str, tuple[str, str]] = {
    "scaling_law": ("nas.evaluators.scaling_law", "ScalingLawEvaluator"),
    "proxy_train": ("nas.evaluators.proxy_train", "ProxyTrainEvaluator"),
    "fitted_law": ("nas.evaluators.fit_law", "FittedLawEvaluator"),
    "decoder_params": ("nas.evaluators.zero_cost", "DecoderParamsEvaluator"),
}


_DESCRIPTIONS: dict[str, str] = {
    "scaling_law": "loss from published scaling laws (Chinchilla form, MoE laws), vectorised",
    "proxy_train": "real proxy training of a scaled-down model (torch), validation loss",
    "fitted_law": "a scaling law fitted to proxy runs (nas fit-law), vectorised",
    "decoder_params": "zero-cost rank proxy: non-embedding parameter count, vectorised",
}


def list_evaluators() -> dict[str, str]:
    """Every registered evaluator name -> a one-line description."""
    return {name: _DESCRIPTIONS[name] for name in sorted(_REGISTRY)}


def get_evaluator(name: str, settings: Mapping[str, Any] | None = None) -> Evaluator:
    """Build a registered evaluator from its settings mapping.

    Unknown names and unknown settings raise :class:`EvaluatorError` naming them and listing
    the allowed ones.
    """
    if name not in _REGISTRY:
        raise EvaluatorError(
            f"evaluator: unknown name {name!r}; allowed: {', '.join(list_evaluators())}"
        )
    module, attr = _REGISTRY[name]
    factory = getattr(importlib.import_module(module), attr)
    evaluator: Evaluator = factory.from_settings(dict(settings or {}))
    return evaluator


def check_settings(evaluator: str, settings: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    """Reject settings that ``allowed`` does not name, listing the allowed keys."""
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise EvaluatorError(
            f"{evaluator}.{unknown[0]}: unknown setting; allowed: {', '.join(sorted(allowed))}"
        )


@contextlib.contextmanager
def named_as(name: Callable[[str], str]) -> Iterator[None]:
    """An :class:`EvaluatorError` raised inside names its key as the user wrote it:
    ``name(key)`` for a message that starts with ``<evaluator>.<key>: `` (settings),
    ``evaluator: `` or a bare ``<key>: ``; other messages (a file named first) are kept.
    E.g. ``scaling_law.law`` becomes ``accuracy.settings.law`` in an experiment file and
    ``--law`` on the command line."""
    try:
        yield
    except EvaluatorError as exc:
        head, sep, rest = str(exc).partition(": ")
        evaluator, dot, key = head.partition(".")
        if sep and dot and evaluator in _REGISTRY and key.isidentifier():
            raise EvaluatorError(f"{name(key)}: {rest}") from None
        if sep and head.isidentifier():
            raise EvaluatorError(f"{name(head)}: {rest}") from None
        raise


def tokens_from_budget(
    *, budget_gpu_hours: float | FloatArray, tokens_per_s_per_device: float | FloatArray
) -> FloatArray:
    """Training tokens a candidate sees in a fixed budget: ``D = budget_h * 3600 * tokens/s/device``.

    ``tokens_per_s_per_device`` comes from the cost model's predicted training throughput for
    each candidate on the experiment's system, so a faster shape is trained on more tokens in
    the same device-hours: the core of the accuracy/speed trade-off.
    """
    budget = np.asarray(budget_gpu_hours, dtype=np.float64)
    rate = np.asarray(tokens_per_s_per_device, dtype=np.float64)
    if np.any(~np.isfinite(budget)) or np.any(budget <= 0):
        raise EvaluatorError(f"budget_gpu_hours: must be positive and finite, got {budget!r}")
    # A candidate with no valid throughput (does not fit: NaN, or a negative rate) gets NaN
    # tokens, which the analytical evaluators turn into a NaN loss, not an error.
    rate = np.where(np.isfinite(rate) & (rate >= 0), rate, np.nan)
    out: FloatArray = np.atleast_1d(budget * 3600.0 * rate).astype(np.float64)
    return out


def batch_tokens(
    batch: ArchBatch, tokens: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """``tokens`` as one value per candidate (a copy) and where it is usable: finite and
    positive (a candidate that does not fit has no tokens and gets a NaN loss)."""
    d = np.broadcast_to(np.asarray(tokens, dtype=np.float64), (len(batch),)).copy()
    return d, np.isfinite(d) & (d > 0)


def evaluate_one(
    evaluate_batch: Callable[..., dict[str, FloatArray]], arch: Architecture, tokens: float
) -> dict[str, float]:
    """``evaluate`` of a vectorised evaluator: its ``evaluate_batch`` on a batch of one."""
    out = evaluate_batch(ArchBatch.from_architectures([arch]), tokens=np.array([tokens]))
    return {k: float(v[0]) for k, v in out.items()}


def perplexity(loss: FloatArray) -> FloatArray:
    """Perplexity of a loss in nats per token (exp; overflow-safe)."""
    out: FloatArray = np.exp(np.minimum(loss, 700.0))
    return out
