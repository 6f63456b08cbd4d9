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


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("scaling_law.law: must be one of auto", "--law: must be one of auto"),
        ("proxy_train.width_factor: bad", "--width-factor: bad"),
        ("evaluator: unknown name 'x'", "--evaluator: unknown name 'x'"),
        ("law: krajewski2024 covers MoE models only", "--law: krajewski2024 covers MoE"),
        ("/tmp/law.yaml: E: required number is missing", "/tmp/law.yaml: E: required number"),
        ("no key here", "no key here"),
    ],
)
def test_named_as_names_the_key_as_the_user_wrote_it(message: str, expected: str) -> None:
    from nas.evaluators.base import named_as

    with pytest.raises(EvaluatorError) as info, named_as(lambda k: "--" + k.replace("_", "-")):
        raise EvaluatorError(message)
    assert str(info.value).startswith(expected)
