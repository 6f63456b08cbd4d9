"""An Optuna sampler that survives pickling: what Tune does to its searcher.

Tune pickles the searcher when the Tuner is built (``tuner.pkl``) and again with every
experiment checkpoint (``search_gen_state-*``), and the searcher holds the Optuna study and
its sampler. Some samplers cannot be pickled: ``NSGAIISampler`` and ``NSGAIIISampler`` keep a
``threading.Lock`` (Optuna 5.1), which made ``nas run --backend ray`` fail before the first
trial with ``TypeError: cannot pickle '_thread.lock' object``.

:class:`RebuildingSampler` wraps the sampler and pickles only the recipe for it (a picklable
factory) plus how many trials it has begun. After a restore the sampler is rebuilt from the
recipe on first use, seeded with that count as its ``seed_offset`` so that it does not
replay the proposals it already made. What a sampler learns from past trials (NSGA-II's
population, TPE's observations, constraint values) lives in the study's trials, which are
pickled with the study, so the rebuilt sampler continues from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

__all__ = ["RebuildingSampler", "SamplerFactory"]

# seed_offset -> a fresh sampler; must be picklable (a module-level function or a partial)
SamplerFactory = Callable[[int], optuna.samplers.BaseSampler]


class RebuildingSampler(optuna.samplers.BaseSampler):
    """Delegates to the sampler ``factory(offset)`` builds; pickles the factory, not it."""

    def __init__(self, factory: SamplerFactory) -> None:
        self._factory = factory
        self._begun = 0  # trials begun so far: the seed offset of a rebuilt sampler
        self._inner: optuna.samplers.BaseSampler | None = factory(0)

    @property
    def inner(self) -> optuna.samplers.BaseSampler:
        """The wrapped sampler (rebuilt here after a restore)."""
        if self._inner is None:
            self._inner = self._factory(self._begun)
        return self._inner

    def __getstate__(self) -> dict[str, Any]:
        return {"_factory": self._factory, "_begun": self._begun, "_inner": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __str__(self) -> str:
        return f"RebuildingSampler({self.inner})"

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._begun += 1
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
