"""Architecture types, derived counts, search spaces, reference models and HF import."""

from __future__ import annotations

from search_spaces.architecture import (
    Architecture,
    MLAConfig,
    MoEConfig,
    architecture_from_dict,
    load_architecture,
)
from search_spaces.counts import ArchBatch, ModelCounts, model_counts
from search_spaces.errors import SpecError

__all__ = [
    "ArchBatch",
    "Architecture",
    "MLAConfig",
    "MoEConfig",
    "ModelCounts",
    "SpecError",
    "architecture_from_dict",
    "load_architecture",
    "model_counts",
]
