"""Number types of experiment fields: a number is written as a YAML number, not text.

pydantic's lax mode reads ``num_devices: '8'`` as 8 and ``num_devices: true`` as 1, so a
quoted value or a boolean slipped through unnoticed. :data:`Int` and :data:`Float` keep lax
mode for everything else (an int is a valid float, ``8.0`` a valid int) and refuse text and
booleans with one message naming what was given. Used for every numeric field of
:mod:`nas.experiment`, nested ones included (knob choices, cost exponents, plan degrees).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Float", "Int", "refuse_text_and_booleans", "refuse_text_facts"]


def refuse_text_and_booleans(value: object) -> object:
    """``value`` unchanged unless it is a string or a boolean (then a ``ValueError``)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {str(value).lower()}")
    if isinstance(value, str):
        raise ValueError(_text(value))
    return value


def _text(value: str) -> str:
    return f"must be a number, got the text {value!r} (write it without quotes)"


def refuse_text_facts(framework: Mapping[str, Any], *, where: str) -> None:
    """The numeric ``framework`` facts of an experiment are numbers, not text (the shared
    fact parser of :mod:`cost_models.options` reads text on purpose, for ``--framework
    key=value`` on the command line)."""
    from cost_models.options import SERVE_FACTS, TRAIN_FACTS

    numeric = {*TRAIN_FACTS.numbers, *SERVE_FACTS.numbers, "grad_bytes"}
    for key, value in framework.items():
        if key in numeric and isinstance(value, str):
            raise ValueError(f"{where}.{key}: {_text(value)}")


Int = Annotated[int, BeforeValidator(refuse_text_and_booleans)]
Float = Annotated[float, BeforeValidator(refuse_text_and_booleans)]
