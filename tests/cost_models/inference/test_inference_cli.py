"""``nas estimate --mode prefill|decode`` and ``nas validate --kind inference`` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CONTRACT_KEYS = {
    "ttft_s",
    "tpot_s",
    "tokens_per_s",
    "kv_cache_bytes",
    "memory_per_device_bytes",
    "fits",
    "plan",
    "time_breakdown_s",
    "memory_breakdown_bytes",
}


def _nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_inference_json_contract(mode: str) -> None:
    out = _nas("estimate", "llama3-70b", "--hardware", "dgx-h100", "--num-devices", "8",
               "--mode", mode, "--batch", "4", "--prompt-len", "1000", "--gen-len", "100",
               "--tp", "8", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert set(r) >= CONTRACT_KEYS
    assert r["plan"] == {"tp": 8, "pp": 1, "dp": 1, "ep": 1}
    total = r["ttft_s"] if mode == "prefill" else r["tpot_s"]
    assert sum(r["time_breakdown_s"].values()) == pytest.approx(total)
    assert r["e2e_s"] == pytest.approx(r["ttft_s"] + 99 * r["tpot_s"])
    assert r["fits"] is True


def test_weight_and_kv_dtype_flags() -> None:
    base = ["estimate", "llama3-8b", "--hardware", "dgx-h100", "--num-devices", "1",
            "--mode", "decode", "--json"]  # fmt: skip
    bf16 = json.loads(_nas(*base).stdout)
    int4 = json.loads(_nas(*base, "--weight-dtype", "int4", "--kv-dtype", "fp8").stdout)
    assert int4["tpot_s"] < bf16["tpot_s"]
    assert int4["kv_cache_bytes"] == pytest.approx(bf16["kv_cache_bytes"] / 2)


def test_model_too_big_is_fits_false_not_an_error() -> None:
    out = _nas("estimate", "llama3.1-405b", "--hardware", "dgx-h100", "--num-devices", "1",
               "--mode", "decode", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["fits"] is False and r["memory_breakdown_bytes"]["weights"] > 80e9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tp", "3"], "tp*pp*dp: must equal the device count 8"),
        (["--weight-dtype", "int3"], "weight_dtype: must be one of"),
        (["--kv-dtype", "fp4"], "kv_dtype: must be one of"),
        (["--batch", "0"], "batch: must be a positive integer"),
        (["--vpp", "2"], "--vpp: only for --mode train"),
    ],
)
def test_bad_inference_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    out = _nas("estimate", "llama3-8b", "--hardware", "dgx-h100", "--num-devices", "8",
               "--mode", "decode", *args)  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_validate_prints_inference_rows() -> None:
    out = _nas("validate", "--kind", "inference", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    ids = {row["id"] for row in r["rows"]}
    assert {"PI1", "I01a", "I04"} <= ids
    assert all(row["kind"] == "inference" for row in r["rows"])


def test_estimate_json_names_the_prefill_chunks() -> None:
    """vLLM's 8,192-token budget: a 2 x 131,072-token prefill on one replica is 32 iterations;
    without chunking (--framework prefill_chunk_tokens=0) one."""
    import json

    from typer.testing import CliRunner

    from nas.cli import app

    base = ["estimate", "llama3-70b", "--hardware", "dgx-h200", "--num-devices", "8", "--tp", "8",
            "--mode", "prefill", "--prompt-len", "131072", "--batch", "2", "--json"]  # fmt: skip
    chunked = CliRunner().invoke(app, base)
    whole = CliRunner().invoke(app, [*base, "--framework", "prefill_chunk_tokens=0"])
    assert chunked.exit_code == 0 and whole.exit_code == 0, chunked.output + whole.output
    c, w = json.loads(chunked.output), json.loads(whole.output)
    assert (c["prefill_chunks"], w["prefill_chunks"]) == (32, 1)
    assert (
        c["memory_breakdown_bytes"]["activations"] < w["memory_breakdown_bytes"]["activations"] / 16
    )
