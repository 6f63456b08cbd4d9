"""Search spaces: registry, define-by-run suggestion, vectorised grid, size and overrides."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from search_spaces import ArchBatch, SpecError, model_counts
from search_spaces.counts import active_params, kv_cache_bytes_per_token, total_params
from search_spaces.spaces import (
    SearchSpace,
    get_space,
    list_spaces,
    load_space,
    sample_space,
    space_from_dict,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Bounds bind here: top_k up to 8 against 2..8 experts, first_dense_layers up to 4 against
# 2..8 layers, so infeasible combinations exist and must be skipped.
TIGHT = {
    "num_layers": {"range": [2, 8], "step": 2},
    "d_model": [256, 512],
    "num_experts": [2, 4, 8],
    "top_k": [1, 8],
    "first_dense_layers": [0, 1],
    "granularity": [1, 2],
}


def test_registry_lists_builtin_spaces() -> None:
    spaces = list_spaces()
    assert {"dense_decoder", "moe_decoder"} <= set(spaces)
    for name, description in spaces.items():
        space = get_space(name)
        assert isinstance(space, SearchSpace)
        assert description == space.description and description


def test_unknown_space_lists_known() -> None:
    with pytest.raises(SpecError, match=r"unknown name 'nope'.*dense_decoder, moe_decoder"):
        get_space("nope")


def _brute_force_size(space: Any) -> int:
    params = space.parameters()
    names = list(params)
    count = 0
    for combo in itertools.product(*(params[n].values().tolist() for n in names)):
        v = dict(zip(names, combo, strict=True))
        if "top_k" in v and v["top_k"] > v["num_experts"]:
            continue
        if "first_dense_layers" in v and v["first_dense_layers"] >= v["num_layers"]:
            continue
        count += 1
    return count


@pytest.mark.parametrize(("name", "overrides"), [("dense_decoder", {}), ("moe_decoder", TIGHT)])
def test_size_equals_grid_length_and_brute_force(name: str, overrides: dict[str, Any]) -> None:
    space = get_space(name, overrides)
    batch, params = space.grid()
    assert space.size() == len(batch) == _brute_force_size(space)
    assert set(params) == set(space.searched())
    assert all(len(v) == len(batch) for v in params.values())
    rows = np.stack([params[n] for n in params], axis=1)
    assert len(np.unique(rows, axis=0)) == len(batch)  # every candidate once


def test_grid_matches_per_candidate_architectures() -> None:
    space = get_space("moe_decoder", TIGHT)
    batch, params = space.grid()
    assert np.all(batch.top_k <= batch.num_experts)
    assert np.all(batch.num_moe_layers >= 1)
    totals, actives = total_params(batch), active_params(batch)
    kv = kv_cache_bytes_per_token(batch)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(batch), size=25, replace=False):
        arch = space.to_architecture({n: v[i].item() for n, v in params.items()})
        c = model_counts(arch)
        assert (totals[i], actives[i], kv[i]) == (
            c.params_total,
            c.params_active,
            c.kv_cache_bytes_per_token,
        )


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_suggest_is_feasible_by_construction(sampler: str) -> None:
    space = get_space("moe_decoder", TIGHT)
    s = (
        optuna.samplers.RandomSampler(seed=1)
        if sampler == "random"
        else optuna.samplers.TPESampler(seed=1, n_startup_trials=5)
    )
    study = optuna.create_study(sampler=s)
    for _ in range(40):
        trial = study.ask()
        arch = space.suggest(trial)  # Architecture validation raises if infeasible
        assert arch.moe is not None
        assert arch.moe.top_k <= arch.moe.num_experts
        assert arch.moe.first_dense_layers < arch.num_layers
        assert arch.num_heads % arch.num_kv_heads == 0
        assert space.to_architecture(trial.params, name=arch.name) == arch
        study.tell(trial, float(model_counts(arch).params_total))


def test_suggest_from_fixed_trial() -> None:
    space = get_space("dense_decoder")
    params = {"num_layers": 32, "d_model": 4096, "head_dim": 128, "num_kv_heads": 8}
    arch = space.suggest(optuna.trial.FixedTrial({**params, "ffn_ratio": 3.5}))
    # Llama-3-8B's shape (arXiv 2407.21783, Table 3): d_ff = 3.5 * 4096 = 14336.
    assert (arch.num_heads, arch.num_kv_heads, arch.d_ff) == (32, 8, 14336)


def test_granularity_sets_expert_width() -> None:
    space = get_space("moe_decoder")
    base = {"d_model": 4096, "ffn_ratio": 4.0, "num_experts": 64, "top_k": 8}
    widths = [space.to_architecture({**base, "granularity": g}).moe.d_expert for g in (1, 2, 8)]
    assert widths == [16384, 8192, 2048]  # d_expert = d_ff / G (Krajewski et al. 2024)


def test_overrides_range_choices_and_fixed() -> None:
    space = get_space(
        "moe_decoder",
        {"num_layers": [16, 64], "num_experts": [8, 16, 64, 128], "num_shared_experts": 1},
    )
    p = space.parameters()
    assert p["num_layers"].is_range and (p["num_layers"].low, p["num_layers"].high) == (16, 64)
    assert p["num_layers"].step == 8  # the step of the built-in range is kept
    assert p["num_experts"].choices == (8, 16, 64, 128)
    assert p["num_shared_experts"].is_fixed and "num_shared_experts" not in space.searched()
    # On a choices parameter a 2-list is two choices.
    two = get_space("moe_decoder", {"num_experts": [8, 64]}).parameters()["num_experts"]
    assert two.choices == (8, 64)
    # The explicit mapping form.
    mapped = get_space("dense_decoder", {"d_model": {"range": [1024, 2048], "step": 512}})
    assert mapped.parameters()["d_model"].values().tolist() == [1024, 1536, 2048]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"colour": [1, 2]}, r"space_overrides\.colour: unknown parameter.*allowed: num_layers"),
        ({"num_layers": [-4, 8]}, "num_layers: values must be positive"),
        ({"d_model": 0}, "d_model: values must be positive"),
        ({"num_layers": [64, 16]}, "num_layers: range high 16 is below low 64"),
        ({"top_k": {"choices": [2, 4]}, "num_experts": [2, 8]}, "top_k: choices must be <="),
        ({"top_k": {"range": [4, 8]}, "num_experts": [2, 8]}, "top_k: range low"),
        ({"head_dim": [64.5]}, "head_dim: values must be integers"),
        ({"d_model": {"range": [1, 2], "step": 0}}, "d_model: step must be positive"),
        ({"d_model": {"from": 1}}, "d_model: a domain mapping takes"),
    ],
)
def test_bad_overrides_raise_one_line(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match) as info:
        get_space("moe_decoder", overrides)
    assert "\n" not in str(info.value)


def test_space_written_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\n"
        "base: {vocab_size: 32000, ffn_activation: gelu, norm: layernorm, bias: true}\n"
        "parameters:\n"
        "  num_layers: {range: [2, 6], step: 2}\n"
        "  d_model: {choices: [256, 512]}\n"
        "  head_dim: 64\n"
        "  num_kv_heads: [1, 4]\n"
        "  ffn_ratio: 4.0\n"
    )
    space = load_space(path, {"num_layers": [2, 4]})
    assert space.size() == 2 * 2 * 2
    arch = space.to_architecture({"num_layers": 4, "d_model": 512, "num_kv_heads": 4})
    assert (arch.num_heads, arch.d_ff, arch.norm, arch.bias) == (8, 2048, "layernorm", True)
    assert get_space(str(path)).name == "tiny"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": "x", "parameters": {"num_layers": 2}, "colour": 1}, r"space\.colour: unknown"),
        ({"name": "x", "parameters": {"num_layers": 2}}, "d_model: required parameter"),
        ({"name": "x", "parameters": {"depth": 2}}, r"parameters\.depth: unknown"),
        (
            {
                "name": "x",
                "base": {"d_ff": 10},
                "parameters": {"num_layers": 2},
            },
            r"base\.d_ff: is derived",
        ),
    ],
)
def test_bad_space_definitions(data: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        space_from_dict(data)


def test_sample_space_is_reproducible() -> None:
    space = get_space("moe_decoder")
    a = [arch for _, arch in sample_space(space, 5, seed=3)]
    b = [arch for _, arch in sample_space(space, 5, seed=3)]
    assert a == b
    assert len({x.to_dict()["moe"]["num_experts"] for x in a} | {0}) > 1


def test_million_candidate_grid_in_seconds() -> None:
    space = get_space("moe_decoder")
    assert space.size() >= 1_000_000
    start = time.perf_counter()
    batch, _ = space.grid()
    totals = total_params(batch)
    elapsed = time.perf_counter() - start
    assert len(batch) == space.size() and np.all(totals > 0)
    assert elapsed < 15.0  # ~1.5 s alone on one core; generous for a shared machine


def test_grid_limit_is_enforced() -> None:
    with pytest.raises(SpecError, match="exceed the grid limit"):
        get_space("moe_decoder").grid(max_candidates=1000)


def test_archbatch_take_keeps_rows() -> None:
    batch, _ = get_space("dense_decoder").grid()
    sub = batch.take(np.array([0, 5]))
    assert isinstance(sub, ArchBatch) and len(sub) == 2
    assert sub.d_model[1] == batch.d_model[5]


def test_to_architecture_rejects_values_outside_the_domain() -> None:
    space = get_space("dense_decoder")
    with pytest.raises(SpecError, match=r"num_layers: 10 is outside its domain \(range \[8, 96\]"):
        space.to_architecture({"num_layers": 10})
    with pytest.raises(SpecError, match=r"head_dim: 96 is outside"):
        space.to_architecture({"head_dim": 96})
    with pytest.raises(SpecError, match="depth: not a parameter of dense_decoder"):
        space.to_architecture({"depth": 3})
