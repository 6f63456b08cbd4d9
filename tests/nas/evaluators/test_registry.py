"""The evaluator registry: the shared registry shape (name -> one-line description) and
unknown names rejected with the list of known ones."""

from __future__ import annotations

import pytest

from nas.evaluators import EvaluatorError, get_evaluator, list_evaluators


def test_registry_lists_every_evaluator_with_a_description() -> None:
    evaluators = list_evaluators()
    assert list(evaluators) == ["decoder_params", "fitted_law", "proxy_train", "scaling_law"]
    assert all(d and "\n" not in d for d in evaluators.values())


def test_unknown_evaluator_lists_the_known_ones() -> None:
    with pytest.raises(EvaluatorError, match="allowed: decoder_params, fitted_law, proxy_train"):
        get_evaluator("nope")
