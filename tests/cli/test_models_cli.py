"""``nas models`` and ``nas spaces``: output and one-line errors (exit code 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture lives in tests/conftest.py
    from conftest import NasRun

LLAMA_YAML = (
    "name: mine\nnum_layers: 2\nd_model: 64\nnum_heads: 4\nnum_kv_heads: 2\n"
    "d_ff: 128\nvocab_size: 256\n"
)


def test_models_list(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["models", "list"])
    assert code == 0
    for name in ("llama3-8b", "deepseek-v3", "mixtral-8x7b", "gpt3-175b", "gpt-oss-120b"):
        assert name in out
    assert "46.7 B params" in out and "12.9 B params" in out  # Mixtral total / active
    assert "moe" in out and "dense" in out


def test_models_show_json_deepseek_v3(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["models", "show", "deepseek-v3", "--json"])
    assert code == 0
    data = json.loads(out)
    # DeepSeek-V3 (arXiv 2412.19437): MLA caches 61 * (512 + 64) bf16 values per token.
    assert data["kv_cache_bytes_per_token"] == 70_272
    assert data["params_total"] == pytest.approx(671e9, rel=0.01)
    for key in ("params_active", "params_embedding", "flops_per_token", "num_layers", "moe", "mla"):
        assert key in data
    assert data["seq_len"] == 4096


def test_models_show_table_and_files(
    nas_cli: NasRun,
    tmp_path: Path,
) -> None:
    code, out, _ = nas_cli(["models", "show", "llama3-8b"])
    assert code == 0 and "8,030,261,248" in out
    path = tmp_path / "mine.yaml"
    path.write_text(LLAMA_YAML)
    code, out, _ = nas_cli(["models", "show", str(path), "--json"])
    assert code == 0 and json.loads(out)["name"] == "mine"
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "num_hidden_layers": 2,
                "vocab_size": 256,
            }
        )
    )
    code, out, _ = nas_cli(["models", "show", str(cfg), "--json"])
    assert code == 0 and json.loads(out)["num_kv_heads"] == 2


def test_spaces_list_show_sample(nas_cli: NasRun) -> None:
    code, out, _ = nas_cli(["spaces", "list"])
    assert code == 0 and "dense_decoder" in out and "moe_decoder" in out
    code, out, _ = nas_cli(
        ["spaces", "show", "moe_decoder", "--override", "{num_layers: [16, 64]}"]
    )
    assert code == 0 and "range [16, 64] step 8" in out and "granularity" in out
    assert "size:" in out
    code, out, _ = nas_cli(["spaces", "sample", "moe_decoder", "-n", "5", "--seed", "2"])
    assert code == 0 and "#4" in out and "d_expert" in out
    _, out2, _ = nas_cli(["spaces", "sample", "moe_decoder", "-n", "5", "--seed", "2"])
    assert out2 == out  # same seed, same candidates


BAD_INPUTS: list[tuple[list[str], str, str]] = [
    # (args, file content or "", text the error line must contain)
    (["models", "show", "{file}"], "name: x\nnum_layers: [1,\n", "malformed YAML"),
    (["models", "show", "{file}"], LLAMA_YAML + "colour: red\n", "colour: unknown field"),
    (
        ["models", "show", "{file}"],
        LLAMA_YAML.replace("num_kv_heads: 2", "num_kv_heads: 3"),
        "num_kv_heads: must divide",
    ),
    (
        ["models", "show", "{file}"],
        LLAMA_YAML.replace("d_model: 64", "d_model: -64"),
        "d_model: must be a positive integer",
    ),
    (
        ["models", "show", "{file}"],
        LLAMA_YAML + "moe: {num_experts: 4, top_k: 6, d_expert: 32}\n",
        "moe.top_k: must be <= moe.num_experts",
    ),
    (
        ["models", "show", "{file}"],
        LLAMA_YAML + "mla: {kv_lora_rank: 16, q_lora_rank: 0}\n",
        "mla.qk_rope_head_dim: required field is missing",
    ),
    (["models", "show", "/nonexistent/model.yaml"], "", "file not found"),
    (["models", "show", "llama5-9b"], "", "unknown name 'llama5-9b'; known: deepseek-v2"),
    (
        ["models", "show", "{json}"],
        '{"model_type": "bert"}',
        "model_type: unsupported 'bert'; supported:",
    ),
    (["models", "show", "{json}"], "{oops", "malformed JSON"),
    (
        ["models", "show", "llama3-8b", "--seq-len", "0"],
        "",
        "--seq-len: must be a positive integer",
    ),
    (["models", "show", "llama3-8b", "--dtype", "fp7"], "", "dtype: must be one of"),
    (["spaces", "show", "nope"], "", "space: unknown name 'nope'; known: dense_decoder"),
    (
        ["spaces", "show", "moe_decoder", "--override", "{depth: 3}"],
        "",
        "space_overrides.depth: unknown parameter",
    ),
    (
        ["spaces", "show", "moe_decoder", "--override", "{num_layers: [-8, 16]}"],
        "",
        "num_layers: values must be positive",
    ),
    (
        ["spaces", "show", "moe_decoder", "--override", "{num_layers: [1,"],
        "",
        "--override: malformed YAML",
    ),
    (
        ["spaces", "sample", "dense_decoder", "-n", "0"],
        "",
        "n: must be an integer from 1 to 10,000",
    ),
    (
        ["spaces", "show", "moe_decoder", "--override", "/nonexistent/overrides.yaml"],
        "",
        "--override: /nonexistent/overrides.yaml: file not found",
    ),
    (
        ["spaces", "show", "{file}"],
        "name: s\nparameters: {num_layers: 4}\n",
        "d_model: required parameter",
    ),
]


@pytest.mark.parametrize(("args", "content", "expected"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(
    nas_cli: NasRun,
    args: list[str],
    content: str,
    expected: str,
    tmp_path: Path,
) -> None:
    yaml_path, json_path = tmp_path / "model.yaml", tmp_path / "config.json"
    yaml_path.write_text(content)
    json_path.write_text(content)
    argv = [a.replace("{file}", str(yaml_path)).replace("{json}", str(json_path)) for a in args]
    code, out, err = nas_cli(argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in err + out


def test_console_script_end_to_end() -> None:
    """The installed entry point (``python -m nas``) prints the MLA KV figure."""
    proc = subprocess.run(
        [sys.executable, "-m", "nas", "models", "show", "deepseek-v3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kv_cache_bytes_per_token"] == 70_272
    bad = subprocess.run(
        [sys.executable, "-m", "nas", "models", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: model: unknown name")
