"""``nas loss``, ``nas train-proxy`` and ``nas fit-law`` through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nas.cli import app
from nas.evaluators.laws import BESIROGLU2024

runner = CliRunner()


def _nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from nas.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_loss_with_params_prints_json_loss() -> None:
    res = runner.invoke(
        app, ["loss", "--params", "7e10", "--tokens", "1.4e12", "--law", "hoffmann2022", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["loss"] == pytest.approx(1.937, abs=0.002)  # eq. 10 at Chinchilla's N, D


def test_loss_moe_params_is_lower_than_dense() -> None:
    dense = runner.invoke(app, ["loss", "--params", "1e9", "--tokens", "1e11", "--json"])
    moe = runner.invoke(
        app,
        [
            "loss",
            "--params",
            "1e9",
            "--num-experts",
            "64",
            "--top-k",
            "1",
            "--tokens",
            "1e11",
            "--json",
        ],
    )
    assert json.loads(moe.output)["loss"] < json.loads(dense.output)["loss"]


def test_loss_of_a_model_file(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text(
        "name: m\nnum_layers: 4\nd_model: 256\nnum_heads: 4\nnum_kv_heads: 4\nd_ff: 704\nvocab_size: 1000\n"
    )
    res = runner.invoke(app, ["loss", str(model), "--tokens", "1e9", "--json", "--shape-penalty"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["model"] == "m" and out["loss"] > 2.0 and out["shape_factor"] >= 1.0


def test_loss_bad_input_is_one_line_exit_2() -> None:
    res = _nas("loss", "--params", "1e9", "--tokens", "1e10", "--law", "kaplan")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert res.stderr.startswith("error: --law: must be one of auto")
    both = _nas("loss", "llama3-8b", "--params", "1e9", "--tokens", "1e10")
    assert both.returncode == 2 and "either MODEL or --params" in both.stderr


def test_train_proxy_json_and_fit_law_roundtrip(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text(
        "name: m\nnum_layers: 2\nd_model: 32\nnum_heads: 2\nnum_kv_heads: 1\nd_ff: 64\nvocab_size: 1000\n"
    )
    res = runner.invoke(
        app,
        [
            "train-proxy",
            str(model),
            "--steps",
            "4",
            "--seq-len",
            "16",
            "--batch-size",
            "2",
            "--eval-every",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{") :])
    assert [c["step"] for c in out["curve"]] == [2, 4]
    assert out["loss"] == out["curve"][-1]["val_loss"] and out["tokens"] == 4 * 2 * 16
    assert out["params"] > 0 and out["tokens_per_s"] > 0 and out["peak_memory_bytes"] > 0

    rng = np.random.default_rng(1)
    n, d = 10 ** rng.uniform(6, 8, 12), 10 ** rng.uniform(8, 10, 12)
    rows = "params,tokens,loss\n" + "".join(
        f"{a},{b},{BESIROGLU2024.loss(a, b)}\n" for a, b in zip(n, d, strict=True)
    )
    results = tmp_path / "results.csv"
    results.write_text(rows)
    law = tmp_path / "law.yaml"
    fit = runner.invoke(app, ["fit-law", str(results), "--out", str(law), "--json"])
    assert fit.exit_code == 0, fit.output
    report = json.loads(fit.output)
    assert report["fit"]["rows"] == 12 and report["fit"]["heldout_rows"] == 3
    assert report["fit"]["rms_rel_error"] < 0.01 and law.is_file()


def test_fit_law_missing_file_exit_2(tmp_path: Path) -> None:
    res = _nas("fit-law", str(tmp_path / "none.csv"))
    assert res.returncode == 2 and "file not found" in res.stderr


def test_fit_law_refuses_runs_of_one_size_and_says_when_nothing_is_held_out(
    tmp_path: Path,
) -> None:
    """Five copies of one deterministic proxy run fit any law exactly: refused in one line.
    Five varied rows fit, and the output says no held-out error could be computed."""
    same = tmp_path / "same.csv"
    same.write_text("params,tokens,loss\n" + "2e6,1e8,4.2\n" * 5)
    res = _nas("fit-law", str(same))
    assert res.returncode == 2 and "params take 1 distinct value" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    varied = tmp_path / "varied.csv"
    sizes = [(1e6, 1e8), (3e6, 2e8), (1e7, 4e8), (3e7, 8e8), (1e8, 1.6e9)]
    varied.write_text("params,tokens,loss\n" + "".join(
        f"{n},{d},{BESIROGLU2024.loss(n, d)}\n" for n, d in sizes))  # fmt: skip
    res = _nas("fit-law", str(varied))
    assert res.returncode == 0, res.stderr
    assert "held out: none" in res.stdout and "5 rows given" in res.stdout
