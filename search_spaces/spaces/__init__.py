"""Search spaces: a small protocol, an explicit registry, and spaces written as YAML data.

``get_space("moe_decoder", {"num_layers": [16, 64]})`` returns a space that can suggest a
candidate from an Optuna trial, enumerate its full grid as arrays, report its size and
rebuild a candidate from its parameters. The override format is documented in
:mod:`search_spaces.spaces.params`.
"""

from __future__ import annotations

from search_spaces.spaces.decoder import RULES, DecoderSpace
from search_spaces.spaces.params import Param
from search_spaces.spaces.registry import (
    SearchSpace,
    get_space,
    list_spaces,
    load_space,
    sample_space,
    space_from_dict,
)

__all__ = [
    "RULES",
    "DecoderSpace",
    "Param",
    "SearchSpace",
    "get_space",
    "list_spaces",
    "load_space",
    "sample_space",
    "space_from_dict",
]
