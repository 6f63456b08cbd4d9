"""The scaling_law and decoder_params evaluators, the registry and hardware-aware tokens."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.evaluators import EvaluatorError, get_evaluator, tokens_from_budget
from nas.evaluators.scaling_law import ScalingLawEvaluator, predict_loss
from search_spaces.architecture import Architecture, MoEConfig
from search_spaces.counts import ArchBatch

DENSE = Architecture(
    name="d",
    num_layers=24,
    d_model=2048,
    num_heads=16,
    num_kv_heads=16,
    d_ff=5632,
    vocab_size=32000,
)
MOE = dataclasses.replace(DENSE, name="m", moe=MoEConfig(num_experts=8, top_k=2, d_expert=5632))

LAWS_ANY = ("auto", "hoffmann2022", "besiroglu2024", "clark2022")
params_st = st.floats(min_value=1e7, max_value=1e12)
tokens_st = st.floats(min_value=1e8, max_value=1e14)
experts_st = st.sampled_from([0, 2, 4, 8, 16, 64, 128, 256, 512])


@settings(max_examples=80, deadline=None)
@given(
    law=st.sampled_from(LAWS_ANY),
    n=params_st,
    grow=st.floats(1.0, 100.0),
    d=tokens_st,
    e=experts_st,
)
def test_more_params_never_raise_loss(law: str, n: float, grow: float, d: float, e: int) -> None:
    small = predict_loss(law, params=n, tokens=d, num_experts=e, top_k=1)
    large = predict_loss(law, params=n * grow, tokens=d, num_experts=e, top_k=1)
    assert float(large) <= float(small) + 1e-12


@settings(max_examples=80, deadline=None)
@given(
    law=st.sampled_from(LAWS_ANY),
    n=params_st,
    d=tokens_st,
    grow=st.floats(1.0, 100.0),
    e=experts_st,
)
def test_more_tokens_never_raise_loss(law: str, n: float, d: float, grow: float, e: int) -> None:
    few = predict_loss(law, params=n, tokens=d, num_experts=e, top_k=1)
    many = predict_loss(law, params=n, tokens=d * grow, num_experts=e, top_k=1)
    assert float(many) <= float(few) + 1e-12


@settings(max_examples=80, deadline=None)
@given(
    law=st.sampled_from(("auto", "clark2022")),
    n=st.floats(min_value=1e7, max_value=1e11),
    d=tokens_st,
    e1=st.sampled_from([1, 2, 4, 8, 16, 64]),
    factor=st.sampled_from([2, 4, 8]),
)
def test_more_experts_at_equal_active_params_lower_moe_loss(
    law: str, n: float, d: float, e1: int, factor: int
) -> None:
    # Clark et al. 2022 fit region (N up to ~1e11 here); active params fixed by top_k = 1
    few = predict_loss(law, params=n, tokens=d, num_experts=e1, top_k=1)
    many = predict_loss(law, params=n, tokens=d, num_experts=e1 * factor, top_k=1)
    assert float(many) < float(few)


@pytest.mark.parametrize("law", ["auto", "besiroglu2024", "hoffmann2022", "clark2022"])
def test_architecture_with_more_experts_same_active_params_is_better(law: str) -> None:
    ev = ScalingLawEvaluator.from_settings({"law": law, "moe_params": None})
    archs = [
        dataclasses.replace(DENSE, moe=MoEConfig(num_experts=e, top_k=1, d_expert=5632))
        for e in (4, 16, 64)
    ]
    out = ev.evaluate_batch(ArchBatch.from_architectures(archs), tokens=np.full(3, 1e11))
    if law in ("besiroglu2024", "hoffmann2022"):  # dense laws count active params by default
        # only the router grows, so the loss barely moves (and never up)
        assert np.allclose(out["loss"], out["loss"][0], rtol=1e-3)
        assert np.all(np.diff(out["loss"]) <= 0)
    else:
        assert np.all(np.diff(out["loss"]) < 0)


def test_faster_candidate_sees_more_tokens_and_gets_lower_loss() -> None:
    # Same model, two plans/shapes with different predicted throughput (cost model output)
    tps = np.array([3000.0, 4500.0])
    d = tokens_from_budget(budget_gpu_hours=50_000.0, tokens_per_s_per_device=tps)
    assert d[1] > d[0]
    assert d[0] == pytest.approx(50_000 * 3600 * 3000)
    ev = get_evaluator("scaling_law")
    out = ev.evaluate_batch(ArchBatch.from_architectures([DENSE, DENSE]), tokens=d)
    assert out["loss"][1] < out["loss"][0]


def test_tokens_from_budget_rejects_bad_budget_and_nan_rate_gives_nan_loss() -> None:
    with pytest.raises(EvaluatorError, match="budget_gpu_hours"):
        tokens_from_budget(budget_gpu_hours=0.0, tokens_per_s_per_device=np.array([1.0]))
    d = tokens_from_budget(budget_gpu_hours=10.0, tokens_per_s_per_device=np.array([np.nan, 1e3]))
    out = get_evaluator("scaling_law").evaluate_batch(
        ArchBatch.from_architectures([DENSE, DENSE]), tokens=d
    )
    assert np.isnan(out["loss"][0]) and np.isfinite(out["loss"][1])


def test_scalar_matches_batch_and_reports_law_params() -> None:
    ev = get_evaluator("scaling_law", {"law": "auto"})
    one = ev.evaluate(MOE, tokens=2e11)
    batch = ev.evaluate_batch(ArchBatch.from_architectures([DENSE, MOE]), tokens=np.full(2, 2e11))
    assert one["loss"] == pytest.approx(float(batch["loss"][1]))
    assert one["perplexity"] == pytest.approx(np.exp(one["loss"]))
    # auto credits the MoE with more than its active parameters, and beats the dense model
    assert batch["law_params"][1] > batch["law_params"][0]
    assert batch["loss"][1] < batch["loss"][0]


def test_shape_penalty_is_small_and_punishes_extreme_shapes() -> None:
    ev = get_evaluator("scaling_law", {"law": "besiroglu2024", "shape_penalty": True})
    good = ev.evaluate(DENSE, tokens=1e11)  # aspect 85, FFN ratio 4.1 gated, head dim 128
    # aspect ratio 512/96 = 5.3: Kaplan et al. 2020 Fig. 5 puts this a few percent worse
    deep = dataclasses.replace(
        DENSE, num_layers=96, d_model=512, num_heads=4, num_kv_heads=4, d_ff=1408
    )
    mqa = dataclasses.replace(DENSE, num_kv_heads=1)
    assert good["shape_factor"] == pytest.approx(1.0, abs=0.002)
    assert 1.01 < ev.evaluate(deep, tokens=1e11)["shape_factor"] < 1.10
    assert ev.evaluate(mqa, tokens=1e11)["shape_factor"] == pytest.approx(1.01, abs=1e-3)


def test_krajewski_law_rejects_dense_and_uses_granularity() -> None:
    ev = get_evaluator("scaling_law", {"law": "krajewski2024"})
    with pytest.raises(EvaluatorError, match="MoE models only"):
        ev.evaluate(DENSE, tokens=1e10)
    fine = dataclasses.replace(DENSE, moe=MoEConfig(num_experts=64, top_k=8, d_expert=704))
    coarse = dataclasses.replace(DENSE, moe=MoEConfig(num_experts=8, top_k=1, d_expert=5632))
    assert ev.evaluate(fine, tokens=1e10)["loss"] < ev.evaluate(coarse, tokens=1e10)["loss"]


def test_registry_rejects_unknown_names_and_settings() -> None:
    with pytest.raises(EvaluatorError, match="allowed: decoder_params, fitted_law"):
        get_evaluator("nope")
    with pytest.raises(EvaluatorError, match=r"scaling_law\.lawz: unknown setting; allowed"):
        get_evaluator("scaling_law", {"lawz": "auto"})
    with pytest.raises(EvaluatorError, match="law: must be one of auto"):
        get_evaluator("scaling_law", {"law": "kaplan"})
    with pytest.raises(NotImplementedError):
        get_evaluator("proxy_train").evaluate_batch(
            ArchBatch.from_architectures([DENSE]), tokens=np.ones(1)
        )


def test_decoder_params_ranks_by_non_embedding_params() -> None:
    ev = get_evaluator("decoder_params")
    small = dataclasses.replace(DENSE, num_layers=12, vocab_size=256000)  # big embeddings
    out = ev.evaluate_batch(ArchBatch.from_architectures([small, DENSE]), tokens=np.ones(2))
    assert out["decoder_params"][0] < out["decoder_params"][1]
    assert out["loss"][0] > out["loss"][1]  # lower score = better rank
