"""Fitting a Chinchilla-form law to results and evaluating with the fitted law."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.evaluators import EvaluatorError, get_evaluator
from nas.evaluators.fit_law import Results, fit_law, load_law, read_results, save_law
from nas.evaluators.laws import BESIROGLU2024
from search_spaces.architecture import Architecture


def _synthetic(n_rows: int = 48, noise: float = 0.003, seed: int = 0) -> Results:
    rng = np.random.default_rng(seed)
    n = 10 ** rng.uniform(7.8, 10.2, n_rows)
    d = 10 ** rng.uniform(9.7, 11.7, n_rows)
    loss = BESIROGLU2024.loss(n, d) * np.exp(rng.normal(0.0, noise, n_rows))
    return Results(params=n, tokens=d, loss=loss)


def test_fit_recovers_a_known_law_and_extrapolates() -> None:
    report = fit_law(_synthetic(), holdout_fraction=0.25)
    law = report.law
    assert law.alpha == pytest.approx(BESIROGLU2024.alpha, abs=0.05)
    assert abs(law.E - BESIROGLU2024.E) < 0.1
    assert report.rms_rel_error < 0.006  # noise is 0.3%
    assert report.heldout_rows == 12
    assert report.heldout_rms_rel_error < 0.01
    # the fitted law predicts far outside its rows about as well as the truth
    assert float(law.loss(1e11, 1e12)) == pytest.approx(
        float(BESIROGLU2024.loss(1e11, 1e12)), rel=0.02
    )


def test_fit_needs_five_rows() -> None:
    r = _synthetic(4)
    with pytest.raises(EvaluatorError, match="at least 5 rows"):
        fit_law(r)


def test_read_csv_json_and_jsonl(tmp_path: Path) -> None:
    r = _synthetic(6)
    rows = [
        {"params": float(a), "tokens": float(b), "loss": float(c)}
        for a, b, c in zip(r.params, r.tokens, r.loss, strict=True)
    ]
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "N,D,loss\n" + "".join(f"{x['params']},{x['tokens']},{x['loss']}\n" for x in rows)
    )
    json_path = tmp_path / "r.json"
    json_path.write_text(json.dumps({"rows": rows}))
    jsonl_path = tmp_path / "r.jsonl"
    jsonl_path.write_text("\n".join(json.dumps(x, indent=None) for x in rows))
    appended = tmp_path / "r.txt"  # pretty-printed train-proxy outputs appended, one failed
    appended.write_text(
        "".join(json.dumps(x, indent=2) + "\n" for x in rows) + '{"failed": true, "reason": "x"}\n'
    )
    for p in (csv_path, json_path, jsonl_path, appended):
        got = read_results(p)
        assert np.allclose(got.loss, r.loss)
    bad = tmp_path / "bad.csv"
    bad.write_text("params,loss\n1,2\n")
    with pytest.raises(EvaluatorError, match="tokens column"):
        read_results(bad)


def test_saved_law_loads_as_fitted_law_evaluator(tmp_path: Path) -> None:
    report = fit_law(_synthetic(), holdout_fraction=0.0)
    path = tmp_path / "law.yaml"
    save_law(report, path)
    law = load_law(path)
    assert law.alpha == pytest.approx(report.law.alpha)
    ev = get_evaluator("fitted_law", {"path": str(path)})
    arch = Architecture(
        name="a",
        num_layers=12,
        d_model=768,
        num_heads=12,
        num_kv_heads=12,
        d_ff=3072,
        vocab_size=50257,
    )
    small = ev.evaluate(arch, tokens=1e10)
    big = ev.evaluate(arch, tokens=1e11)
    assert big["loss"] < small["loss"]
    # default convention: non-embedding parameters one token touches
    assert small["law_params"] == pytest.approx(12 * (4 * 768**2 + 3 * 768 * 3072) + 768 * 25)
    with pytest.raises(EvaluatorError, match="path: required"):
        get_evaluator("fitted_law", {})


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"zzz": 1}, "zzz: unknown key; allowed: law, form"),
        ({"valid_params": [1]}, "valid_params: expected [low, high]"),
        ({"alpha": "x"}, "alpha: must be a finite number, got 'x'"),
    ],
)
def test_a_hand_edited_law_file_is_one_line(tmp_path: Path, edit: dict, expected: str) -> None:
    import yaml

    path = tmp_path / "law.yaml"
    save_law(fit_law(_synthetic(), holdout_fraction=0.0), path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **edit}))
    with pytest.raises(EvaluatorError, match=expected.replace("[", r"\[")):
        load_law(path)
