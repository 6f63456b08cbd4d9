"""The ``decoder_params`` zero-cost proxy: rank candidates by non-embedding parameter count.

LiteTransformerSearch (Javaheripi et al. 2022, arXiv 2203.02094) found that the decoder
(non-embedding) parameter count ranks the perplexity of trained models with Spearman
~0.97-0.99 within its search spaces, while total parameters rank much worse. It costs
nothing, but it is a *rank proxy*: its ``loss`` is ``-ln(decoder_params)``, a score that is
lower for larger decoders and has no absolute meaning (``perplexity`` is ``exp`` of it).
It ignores tokens and hardware, so it cannot see the speed/accuracy trade-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.evaluators.base import EvaluatorError, ReportFn, check_settings, evaluate_one
from search_spaces import counts
from search_spaces.architecture import Architecture
from search_spaces.counts import ArchBatch, FloatArray

__all__ = ["DecoderParamsEvaluator"]


COUNTS: tuple[str, ...] = ("non_embedding", "active_non_embedding")


@dataclass(frozen=True, kw_only=True)
class DecoderParamsEvaluator:
    """``count``: ``non_embedding`` (all decoder weights, experts included, the default) or
    ``active_non_embedding`` (what one token touches)."""

    count: str = "non_embedding"
    name: str = "decoder_params"
    vectorised: bool = True

    def __post_init__(self) -> None:
        if self.count not in COUNTS:
            raise EvaluatorError(
                f"decoder_params.count: must be one of {', '.join(COUNTS)}; got {self.count!r}"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DecoderParamsEvaluator:
        check_settings("decoder_params", settings, {"count": None})
        return cls(**dict(settings))

    def evaluate_batch(self, batch: ArchBatch, *, tokens: FloatArray) -> dict[str, FloatArray]:
        if self.count == "non_embedding":
            n = counts.non_embedding_params(batch)
        else:
            n = counts.active_params(batch) - counts.embedding_params(batch)
        score: FloatArray = -np.log(np.maximum(n, 1.0))
        return {"loss": score, "perplexity": np.exp(score), "decoder_params": n}

    def evaluate(
        self, arch: Architecture, *, tokens: float, report: ReportFn | None = None
    ) -> dict[str, float]:
        return evaluate_one(self.evaluate_batch, arch, tokens)
