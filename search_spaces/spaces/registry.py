"""The search-space protocol, the explicit registry, and loading spaces from YAML."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from search_spaces.architecture import Architecture, load_yaml_mapping
from search_spaces.counts import ArchBatch
from search_spaces.errors import SpecError
from search_spaces.spaces.decoder import DecoderSpace, parse_domain
from search_spaces.spaces.params import Param

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

__all__ = [
    "SearchSpace",
    "get_space",
    "list_spaces",
    "load_space",
    "sample_space",
    "space_from_dict",
]


SPACES_DIR = Path(__file__).resolve().parent
_SPACE_KEYS = ("name", "description", "base", "round_to", "parameters")


@runtime_checkable
class SearchSpace(Protocol):
    """What the search driver needs from a space."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def base(self) -> Mapping[str, Any]: ...

    def parameters(self) -> dict[str, Param]: ...

    def searched(self) -> dict[str, Param]: ...

    def describe(self) -> list[tuple[str, str, int]]: ...

    def suggest(self, trial: BaseTrial) -> Architecture: ...

    def grid(
        self, *, max_candidates: int = ...
    ) -> tuple[ArchBatch, dict[str, npt.NDArray[np.float64]]]: ...

    def size(self) -> int: ...

    def to_architecture(self, params: Mapping[str, Any], *, name: str = "") -> Architecture: ...

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> SearchSpace: ...


def space_from_dict(data: Mapping[str, Any], *, where: str = "space") -> DecoderSpace:
    """Build a space from its YAML mapping (``name``, ``base``, ``parameters``, ...)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SPACE_KEYS))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown field; allowed: {', '.join(_SPACE_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}.name: must be a non-empty string, got {name!r}")
    base = data.get("base") or {}
    params = data.get("parameters")
    if not isinstance(base, Mapping):
        raise SpecError(f"{where}.base: must be a mapping of architecture fields")
    if not isinstance(params, Mapping) or not params:
        raise SpecError(f"{where}.parameters: must be a non-empty mapping of parameter domains")
    parsed = {str(key): parse_domain(str(key), spec) for key, spec in params.items()}
    return DecoderSpace(
        name=name,
        description=str(data.get("description", "")),
        base=dict(base),
        params=parsed,
        round_to=data.get("round_to", 64),
    )


def load_space(path: str | Path, overrides: Mapping[str, Any] | None = None) -> DecoderSpace:
    """Load a space YAML file; errors are prefixed with the file name."""
    p = Path(path)
    data = load_yaml_mapping(p)
    try:
        return space_from_dict(data).with_overrides(overrides)
    except SpecError as exc:
        raise SpecError(f"{p.name}: {exc}") from None


# Explicit registry: name -> factory. Built-in spaces are data files next to this module.
_REGISTRY: dict[str, Callable[[], SearchSpace]] = {
    "dense_decoder": lambda: load_space(SPACES_DIR / "dense_decoder.yaml"),
    "moe_decoder": lambda: load_space(SPACES_DIR / "moe_decoder.yaml"),
}


def list_spaces() -> dict[str, str]:
    """Every registered space name -> its one-line description (from its YAML file)."""
    return {name: _REGISTRY[name]().description for name in sorted(_REGISTRY)}


def get_space(name: str, overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """A registered space by name (or a space YAML path), with optional overrides."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return load_space(name, overrides)
    factory = _REGISTRY.get(name)
    if factory is None:
        raise SpecError(
            f"space: unknown name {name!r}; known: {', '.join(sorted(_REGISTRY))} "
            "(or give a space .yaml file)"
        )
    return factory().with_overrides(overrides)


MAX_SAMPLES = 10_000
"""Most candidates :func:`sample_space` draws at once (one Optuna ask/tell each, ~1 ms)."""


def sample_space(
    space: SearchSpace, n: int, *, seed: int = 0
) -> list[tuple[dict[str, Any], Architecture]]:
    """``n`` candidates drawn by Optuna's RandomSampler (ask/tell on an in-memory study)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise SpecError(f"n: must be an integer from 1 to {MAX_SAMPLES:,}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SpecError(f"seed: must be an integer from 0 to 2**32 - 1, got {seed!r}")
    import optuna  # imported lazily: only sampling needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        arch = space.suggest(trial)
        out.append((dict(trial.params), arch))
        study.tell(trial, 0.0)
    return out
