"""The reference-model catalogue and the spec dispatch of ``load_model``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from search_spaces import SpecError
from search_spaces.catalogue import MODELS_DIR, list_models, load_model, model_summary

REQUIRED = {
    "gpt3-175b",
    "gpt2-124m",
    "llama2-7b",
    "llama2-13b",
    "llama2-70b",
    "llama3-8b",
    "llama3-70b",
    "llama3.1-405b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "deepseek-v2",
    "deepseek-v3",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "mpt-7b",
    "mpt-30b",
    "nemotron4-340b",
    "gpt-oss-120b",
    "mistral-7b",
}


def test_catalogue_holds_the_required_models() -> None:
    names = list_models()
    assert set(names) >= REQUIRED
    assert len(names) >= 18


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_model_file_is_valid_and_cites_a_source(name: str) -> None:
    raw = yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text())
    assert isinstance(raw.get("source"), str) and len(raw["source"]) > 20
    arch = load_model(name)
    assert arch.name == name
    assert arch.source == raw["source"]


def test_load_model_dispatches_on_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    data = yaml.safe_load((MODELS_DIR / "llama3-8b.yaml").read_text())
    data["name"] = "mine"
    path.write_text(yaml.safe_dump(data))
    arch = load_model(str(path))
    assert arch.name == "mine"
    assert arch.d_model == load_model("llama3-8b").d_model


def test_load_model_dispatches_on_hf_json(tmp_path: Path) -> None:
    folder = tmp_path / "Mistral-7B-v0.1"
    folder.mkdir()
    cfg = {
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    arch = load_model(folder / "config.json")
    assert arch.name == "Mistral-7B-v0.1"
    ref = model_summary(load_model("mistral-7b"))
    assert model_summary(arch)["params_total"] == ref["params_total"]


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(SpecError, match=r"unknown name 'llama5'.*llama3-8b"):
        load_model("llama5")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_model(str(tmp_path / "nope.yaml"))


def test_summary_has_the_contract_keys() -> None:
    s = model_summary(load_model("deepseek-v3"))
    for key in (
        "params_total",
        "params_active",
        "params_embedding",
        "kv_cache_bytes_per_token",
        "flops_per_token",
        "num_layers",
        "mla",
        "moe",
    ):
        assert key in s
    assert s["kv_cache_bytes_per_token"] == 70_272
    assert s["seq_len"] == 4096
