"""The Ray searcher's sampler survives pickling for every sampler the schema accepts (no Ray
cluster needed): the NSGA-II failure of issue 15 was a lock inside the sampler."""

from __future__ import annotations

import pickle
import typing
from functools import partial

import optuna
import pytest

from nas.experiment import SearchSettings
from nas.search.optuna_backend import make_sampler
from nas.search.ray.sampler import RebuildingSampler

SAMPLERS = typing.get_args(SearchSettings.model_fields["sampler"].annotation)


def _factory(seed_offset: int, *, name: str) -> optuna.samplers.BaseSampler:
    pop = {"population_size": 4} if name.startswith("nsga") else {}
    settings = SearchSettings(sampler=name, trials=12, seed=3, **pop)
    return make_sampler(settings, seed_offset=seed_offset, has_constraints=False)


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_int("y", 1, 8)
    return x * y, (1.0 - x) + y


def test_nsga2_sampler_itself_does_not_pickle() -> None:
    """The cause: if Optuna ever makes it picklable this test says the wrapper may go."""
    with pytest.raises(TypeError, match="lock"):
        pickle.dumps(_factory(0, name="nsga2"))


@pytest.mark.parametrize("name", SAMPLERS)
def test_study_with_wrapped_sampler_pickles_and_continues(name: str) -> None:
    sampler = RebuildingSampler(partial(_factory, name=name))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=6)
    restored: optuna.Study = pickle.loads(pickle.dumps(study))
    wrapped = restored.sampler
    assert isinstance(wrapped, RebuildingSampler)
    assert wrapped._inner is None and wrapped._begun == 6  # the recipe travelled, not the sampler
    restored.optimize(_objective, n_trials=6)
    assert len(restored.trials) == 12
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in restored.trials)
    assert type(wrapped.inner) is type(_factory(0, name=name))
    # rebuilt with the count as seed offset: it does not replay the first proposals
    first = [t.params for t in restored.trials[:6]]
    assert [t.params for t in restored.trials[6:]] != first
