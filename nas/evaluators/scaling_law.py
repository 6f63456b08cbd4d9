"""The ``scaling_law`` evaluator: predicted validation loss from published laws, vectorised.

Laws (setting ``law``):

* ``hoffmann2022``, ``besiroglu2024``: dense Chinchilla form on total parameters. An MoE is
  counted by ``moe_params``: ``active`` (default: a token sees only its experts, the
  conservative reading), ``total`` (optimistic bound) or ``effective`` (below).
* ``clark2022``: Clark et al.'s routed-LM law on the parameters one token touches and
  E = num_experts / top_k, at its own ~130B tokens; other token counts shift it by the
  Besiroglu data term ``B (D^-beta - D0^-beta)`` (approximate: borrowed from another dataset).
* ``krajewski2024``: fine-grained law on active non-embedding parameters and granularity
  G = d_ff / d_expert; MoE candidates only (it was fitted at expansion rate 64).
* ``auto`` (default): ``besiroglu2024`` on total parameters for dense models and, for MoE, on
  the *effective* parameter count = active x Clark gain(E) x Krajewski gain(G), so dense and
  MoE candidates share one calibration.

``shape_penalty: true`` multiplies the loss by the approximate Kaplan shape / GQA factor of
:mod:`nas.evaluators.shape`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nas.evaluators.base import (
    EvaluatorError,
    ReportFn,
    batch_tokens,
    check_settings,
    evaluate_one,
    perplexity,
)
from nas.evaluators.laws import (
    BESIROGLU2024,
    CLARK2022,
    DENSE_LAWS,
    KRAJEWSKI2024,
    LAW_NAMES,
    expert_ratio,
    moe_effective_params,
)
from nas.evaluators.shape import shape_factor
from search_spaces import counts
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, FloatArray

__all__ = ["MOE_PARAMS", "ScalingLawEvaluator", "granularity", "predict_loss"]


MOE_PARAMS: tuple[str, ...] = ("active", "total", "effective")
_SETTINGS: dict[str, Any] = {"law": "auto", "shape_penalty": False, "moe_params": None}


def granularity(b: ArchBatch) -> FloatArray:
    """G = d_ff / d_expert for MoE candidates, 1 for dense (Architecture.granularity)."""
    out: FloatArray = np.where(b.d_expert > 0, b.d_ff / np.maximum(b.d_expert, 1.0), 1.0)
    return out


def predict_loss(
    law: str,
    *,
    params: npt.ArrayLike,
    tokens: npt.ArrayLike,
    num_experts: npt.ArrayLike = 0.0,
    top_k: npt.ArrayLike = 1.0,
    granularity: npt.ArrayLike = 1.0,
) -> FloatArray:
    """Loss from parameter counts alone (``nas loss --params``).

    ``params`` is the count the law expects: total parameters for a dense model under the
    dense laws; for an MoE the parameters one token touches (active), with
    ``num_experts`` / ``top_k`` routed experts (0 experts = dense).
    """
    n, d = np.asarray(params, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    _check_positive(n, d)
    g = np.asarray(granularity, dtype=np.float64)
    if np.any(~np.isfinite(g)) or np.any(g <= 0):
        raise EvaluatorError("granularity: must be positive and finite (d_ff / d_expert)")
    ratio = expert_ratio(num_experts, top_k)
    is_moe = np.asarray(num_experts, dtype=np.float64) > 0
    if law in ("auto", "besiroglu2024", "hoffmann2022"):
        dense = DENSE_LAWS["besiroglu2024" if law == "auto" else law]
        if law == "auto":
            n = np.where(
                is_moe, moe_effective_params(n, expert_ratio=ratio, granularity=granularity), n
            )
        out: FloatArray = dense.loss(n, d)
        return out
    if law == "clark2022":
        return _clark_loss(n, d, ratio)
    if law == "krajewski2024":
        if not np.all(is_moe):
            raise EvaluatorError(
                "law: krajewski2024 covers MoE models only (fitted at expansion rate 64); "
                "use auto, clark2022 or a dense law for dense candidates"
            )
        return KRAJEWSKI2024.loss(n, d, granularity)
    raise EvaluatorError(f"law: must be one of {', '.join(LAW_NAMES)}; got {law!r}")


def _clark_loss(n: FloatArray, d: FloatArray, ratio: npt.ArrayLike) -> FloatArray:
    shift = BESIROGLU2024.B * (d**-BESIROGLU2024.beta - CLARK2022.tokens_ref**-BESIROGLU2024.beta)
    out: FloatArray = CLARK2022.loss_at_ref(n, ratio) + shift
    return out


def _check_positive(n: FloatArray, d: FloatArray) -> None:
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise EvaluatorError("params: must be positive and finite")
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise EvaluatorError("tokens: must be positive and finite")


@dataclass(frozen=True, kw_only=True)
class ScalingLawEvaluator:
    """Analytical loss prediction; see the module docstring for the laws."""

    law: str = "auto"
    shape_penalty: bool = False
    moe_params: str = "active"  # for dense laws; auto always uses "effective"
    name: str = "scaling_law"
    vectorised: bool = True

    def __post_init__(self) -> None:
        if self.law not in LAW_NAMES:
            raise EvaluatorError(
                f"scaling_law.law: must be one of {', '.join(LAW_NAMES)}; got {self.law!r}"
            )
        if not isinstance(self.shape_penalty, bool):
            raise EvaluatorError(
                f"scaling_law.shape_penalty: must be true or false, got {self.shape_penalty!r}"
            )
        if self.moe_params not in MOE_PARAMS:
            raise EvaluatorError(
                f"scaling_law.moe_params: must be one of {', '.join(MOE_PARAMS)}; "
                f"got {self.moe_params!r}"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ScalingLawEvaluator:
        check_settings("scaling_law", settings, _SETTINGS)
        values = {k: v for k, v in settings.items() if v is not None}
        if "moe_params" not in values:
            values["moe_params"] = "effective" if values.get("law", "auto") == "auto" else "active"
        return cls(**values)

    def law_params(self, b: ArchBatch) -> FloatArray:
        """The parameter count N each candidate is evaluated at (law's convention)."""
        is_moe = b.num_experts > 0
        active = counts.active_params(b)
        if self.law == "clark2022":
            return active
        if self.law == "krajewski2024":
            out: FloatArray = active - counts.embedding_params(b)
            return out
        moe_params = "effective" if self.law == "auto" else self.moe_params
        if moe_params == "total":
            moe_n = counts.total_params(b)
        elif moe_params == "effective":
            ratio = expert_ratio(b.num_experts, b.top_k)
            moe_n = moe_effective_params(active, expert_ratio=ratio, granularity=granularity(b))
        else:
            moe_n = active
        out = np.where(is_moe, moe_n, counts.total_params(b))
        return out

    def evaluate_batch(self, batch: ArchBatch, *, tokens: FloatArray) -> dict[str, FloatArray]:
        d, valid = batch_tokens(batch, tokens)
        d_safe = np.where(valid, d, 1.0)
        n = self.law_params(batch)
        law = "besiroglu2024" if self.law == "auto" else self.law
        # n is already the law's N (effective for auto), so evaluate the plain law on it.
        loss = predict_loss(
            law,
            params=n,
            tokens=d_safe,
            num_experts=batch.num_experts,
            top_k=batch.top_k,
            granularity=granularity(batch),
        )
        factor = shape_factor(batch) if self.shape_penalty else np.ones_like(loss)
        loss = np.where(valid, loss * factor, np.nan)
        return {
            "loss": loss,
            "perplexity": perplexity(loss),
            "law_params": n,
            "tokens": d,
            "shape_factor": factor,
        }

    def evaluate(
        self, arch: Architecture, *, tokens: float, report: ReportFn | None = None
    ) -> dict[str, float]:
        return evaluate_one(self.evaluate_batch, arch, tokens)
