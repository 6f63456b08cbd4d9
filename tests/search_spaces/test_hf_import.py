"""Hugging Face config import: configs written from the public config.json values must give
the same counts as the reference YAML models."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from search_spaces import SpecError, hf_cache, model_counts
from search_spaces.architecture import Architecture
from search_spaces.catalogue import load_model
from search_spaces.hf_import import architecture_from_hf_config, supported_model_types

LLAMA3_8B = {  # meta-llama/Meta-Llama-3-8B config.json
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
}
MIXTRAL_8X7B = {  # mistralai/Mixtral-8x7B-v0.1 config.json
    "model_type": "mixtral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "vocab_size": 32000,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
}
QWEN3_30B_A3B = {  # Qwen/Qwen3-30B-A3B config.json
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_hidden_layers": 48,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "vocab_size": 151936,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
}
DEEPSEEK_V3 = {  # deepseek-ai/DeepSeek-V3 config.json
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "num_hidden_layers": 61,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "moe_layer_freq": 1,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "vocab_size": 129280,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "num_nextn_predict_layers": 1,
}
DEEPSEEK_V2 = {  # deepseek-ai/DeepSeek-V2 config.json
    **DEEPSEEK_V3,
    "model_type": "deepseek_v2",
    "num_nextn_predict_layers": 0,
    "hidden_size": 5120,
    "intermediate_size": 12288,
    "moe_intermediate_size": 1536,
    "num_hidden_layers": 60,
    "n_routed_experts": 160,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "first_k_dense_replace": 1,
    "vocab_size": 102400,
}
GPT2 = {  # openai-community/gpt2 config.json
    "model_type": "gpt2",
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "n_inner": None,
    "vocab_size": 50257,
    "activation_function": "gelu_new",
}
MISTRAL_7B = {**LLAMA3_8B, "model_type": "mistral", "vocab_size": 32000}  # Mistral-7B-v0.1
QWEN3_235B = {  # Qwen/Qwen3-235B-A22B config.json
    **QWEN3_30B_A3B,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "moe_intermediate_size": 1536,
    "num_attention_heads": 64,
    "num_hidden_layers": 94,
}


@pytest.mark.parametrize(
    ("config", "reference"),
    [
        (LLAMA3_8B, "llama3-8b"),
        (MISTRAL_7B, "mistral-7b"),
        (MIXTRAL_8X7B, "mixtral-8x7b"),
        (QWEN3_30B_A3B, "qwen3-30b-a3b"),
        (QWEN3_235B, "qwen3-235b-a22b"),
        (DEEPSEEK_V3, "deepseek-v3"),
        (DEEPSEEK_V2, "deepseek-v2"),
        (GPT2, "gpt2-124m"),
    ],
)
def test_hf_config_counts_match_reference_model(config: dict[str, Any], reference: str) -> None:
    ours = model_counts(architecture_from_hf_config(config, name="x"))
    ref = model_counts(load_model(reference))
    assert ours.params_total == ref.params_total
    assert ours.params_active == ref.params_active
    assert ours.kv_cache_bytes_per_token == ref.kv_cache_bytes_per_token
    assert ours.flops_per_token == ref.flops_per_token


def test_qwen2_and_qwen3_dense() -> None:
    # Qwen/Qwen2.5-7B config.json (no attention_bias key: Qwen2's code puts q/k/v biases on).
    qwen2 = dict(QWEN2_7B)
    a = architecture_from_hf_config(qwen2)
    assert (a.head_dim, a.num_kv_heads, a.ffn_activation) == (128, 4, "swiglu")
    assert (a.attention_bias, a.bias) == ("qkv", False)
    # HF Qwen/Qwen2.5-7B model card: 7.61B parameters.
    assert model_counts(a).params_total == pytest.approx(7.61e9, rel=0.01)
    # Qwen/Qwen3-0.6B: explicit head_dim 128 with d_model 1024 and 16 heads, tied embeddings.
    qwen3 = {
        **qwen2,
        "model_type": "qwen3",
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "num_hidden_layers": 28,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    }
    b = architecture_from_hf_config(qwen3)
    assert b.head_dim == 128 and b.tie_embeddings and b.attention_bias == "none"
    # Qwen3 technical report (arXiv 2505.09388) Table 1: Qwen3-0.6B has 0.6B parameters.
    assert model_counts(b).params_total == pytest.approx(0.6e9, rel=0.01)


def _qwen2_shapes_params(cfg: dict[str, Any]) -> int:
    """Qwen2's parameter count from the tensor shapes its modelling code builds (untied
    embedding and LM head, per layer q/k/v with biases, o without, a SwiGLU MLP, two
    RMSNorms; one final norm)."""
    d, kv = (
        cfg["hidden_size"],
        cfg["num_key_value_heads"] * (cfg["hidden_size"] // cfg["num_attention_heads"]),
    )
    q, k_v, o = d * d + d, 2 * (d * kv + kv), d * d
    layer = q + k_v + o + 3 * d * cfg["intermediate_size"] + 2 * d
    return 2 * cfg["vocab_size"] * d + cfg["num_hidden_layers"] * layer + d


QWEN2_7B = {  # Qwen/Qwen2.5-7B config.json (fields used)
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "num_hidden_layers": 28,
    "vocab_size": 152064,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
}


def test_qwen2_qkv_bias_is_counted_exactly() -> None:
    a = architecture_from_hf_config(QWEN2_7B)
    counts = model_counts(a)
    assert counts.params_total == _qwen2_shapes_params(QWEN2_7B)
    # the biases alone: q (d_model) + k and v (2 * kv heads * head_dim) per layer
    unbiased = model_counts(dataclasses.replace(a, attention_bias="none"))
    assert counts.params_total - unbiased.params_total == 28 * (3584 + 2 * 4 * 128)
    assert counts.params_active - unbiased.params_active == 28 * (3584 + 2 * 4 * 128)
    # FLOPs per token and KV cache do not change (a bias add is not a matmul)
    assert counts.flops_per_token == unbiased.flops_per_token
    assert counts.kv_cache_bytes_per_token == unbiased.kv_cache_bytes_per_token


def test_qwen2_bias_reaches_training_memory() -> None:
    from cost_models.estimate import estimate
    from cost_models.plan import ParallelPlan, TrainWorkload
    from hw_profiles.loader import load_system

    a = architecture_from_hf_config(QWEN2_7B)
    plan = ParallelPlan(tp=1, pp=1, dp=1, global_batch=1)
    system = load_system("dgx-h100", 1)

    def weights(arch: Architecture) -> float:
        r = estimate(arch, system, TrainWorkload(seq_len=1024), plan=plan)
        return float(r["memory_breakdown_bytes"]["weights"])

    bias_params = 28 * (3584 + 2 * 4 * 128)
    diff = weights(a) - weights(dataclasses.replace(a, attention_bias="none"))
    assert diff == pytest.approx(2 * bias_params)  # bf16 weights


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"attention_bias": True}, ("qkvo", False)),
        ({"attention_bias": True, "mlp_bias": True}, ("none", True)),
        ({"attention_bias": False}, ("none", False)),
        ({"model_type": "qwen3", "attention_bias": True}, ("qkvo", False)),
        ({"model_type": "qwen2", "attention_bias": False}, ("qkv", False)),
        ({"model_type": "mistral", "attention_bias": True}, ("none", False)),
    ],
)
def test_attention_bias_follows_each_family(
    change: dict[str, Any], expected: tuple[str, bool]
) -> None:
    a = architecture_from_hf_config({**LLAMA3_8B, **change})
    assert (a.attention_bias, a.bias) == expected
    extra = model_counts(a).params_total - model_counts(load_model("llama3-8b")).params_total
    width = 32 * (4096 + 2 * 8 * 128)  # q, k, v outputs over 32 layers
    want = {"none": 0, "qkv": width, "qkvo": width + 32 * 4096}[a.attention_bias]
    if not a.bias:
        assert extra == want


def test_local_file_and_name(tmp_path: Path) -> None:
    folder = tmp_path / "DeepSeek-V3"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(DEEPSEEK_V3))
    arch = architecture_from_hf_config(folder / "config.json")
    assert arch.name == "DeepSeek-V3"
    assert arch.mla is not None and arch.mla.kv_lora_rank == 512
    assert arch.moe is not None and arch.moe.first_dense_layers == 3


def test_deepseek_v2_lite_without_q_lora() -> None:
    lite = {**DEEPSEEK_V2, "q_lora_rank": None}
    arch = architecture_from_hf_config(lite)
    assert arch.mla is not None and arch.mla.q_lora_rank == 0


def test_unsupported_model_type_lists_supported() -> None:
    with pytest.raises(SpecError, match=r"model_type: unsupported 'bert'.*deepseek_v3.*qwen3_moe"):
        architecture_from_hf_config({"model_type": "bert"})
    assert "gpt2" in supported_model_types()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hidden_size": None}, "hidden_size"),
        ({"num_key_value_heads": 5}, "num_kv_heads"),
        ({"hidden_act": "tanh"}, "hidden_act"),
        ({"num_hidden_layers": "32"}, "num_hidden_layers"),
        ({"hidden_act": ["silu"]}, "hidden_act"),
        ({"hidden_act": {"a": 1}}, "hidden_act"),
        ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),
        ({"quantization_config": "fp8"}, "quantization_config"),
        ({"quantization_config": [1]}, "quantization_config"),
        ({"num_nextn_predict_layers": "1"}, "num_nextn_predict_layers"),
        ({"hidden_size": 10**30}, "d_model"),
        ({"vocab_size": 2**25}, "vocab_size"),
    ],
)
def test_bad_config_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        architecture_from_hf_config({**LLAMA3_8B, **change})


def test_malformed_json_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="malformed JSON"):
        architecture_from_hf_config(path)


# --- model folders, hub ids in the local cache, refused features ---------------------

ROOT = Path(__file__).resolve().parents[2]


def _fake_cache(root: Path, repo_id: str, config: dict[str, Any], *, pinned: bool) -> Path:
    """The hub cache layout: blobs, snapshots/<rev>/config.json, refs/main."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    for rev, cfg in (("0ld", {**config, "num_hidden_layers": 2}), ("abc123", config)):
        snap = folder / "snapshots" / rev
        snap.mkdir(parents=True)
        (snap / "config.json").write_text(json.dumps(cfg))
    if pinned:
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text("abc123")
    return folder


def test_model_folder(tmp_path: Path) -> None:
    (tmp_path / "Llama-3-8B").mkdir()
    (tmp_path / "Llama-3-8B" / "config.json").write_text(json.dumps(LLAMA3_8B))
    arch = load_model(str(tmp_path / "Llama-3-8B"))
    assert arch.name == "Llama-3-8B" and arch.num_layers == 32
    with pytest.raises(SpecError, match=r"folder has no config\.json"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("with_hub_library", [True, False])
def test_hub_id_from_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_hub_library: bool
) -> None:
    if with_hub_library:
        pytest.importorskip("huggingface_hub")
    else:
        monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # "meta-llama/Meta-Llama-3-8B" is no path here
    _fake_cache(tmp_path, "meta-llama/Meta-Llama-3-8B", LLAMA3_8B, pinned=True)
    arch = load_model("meta-llama/Meta-Llama-3-8B")
    assert arch.name == "Meta-Llama-3-8B" and arch.num_layers == 32  # refs/main, not "0ld"
    assert model_counts(arch).params_total == pytest.approx(8.03e9, rel=0.01)
    with pytest.raises(SpecError, match=r"no config.json for hub id org/missing .*download"):
        load_model("org/missing")


def test_cli_reads_a_hub_id(tmp_path: Path) -> None:
    _fake_cache(tmp_path / "hub", "deepseek-ai/DeepSeek-V3", DEEPSEEK_V3, pinned=False)
    result = subprocess.run(
        [sys.executable, "-m", "nas", "models", "show", "deepseek-ai/DeepSeek-V3", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "DeepSeek-V3"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_type": "mistral", "sliding_window": 4096}, "sliding_window: 4096"),
        ({"quantization_config": {"quant_method": "fp8"}}, "quantization_config: quant_method"),
        ({"num_nextn_predict_layers": 1}, "num_nextn_predict_layers: 1"),
        ({"mlp_bias": True}, "mlp_bias: true without attention_bias"),
        ({"attention_bias": "yes"}, "attention_bias: must be true or false"),
    ],
)
def test_unmodelled_features_are_refused_in_one_line(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field) as info:
        architecture_from_hf_config({**LLAMA3_8B, **change})
    assert "\n" not in str(info.value)


def test_attention_bias_on_mla_is_refused_in_one_line() -> None:
    with pytest.raises(SpecError, match="attention_bias: true: biases on the MLA") as info:
        architecture_from_hf_config({**DEEPSEEK_V3, "attention_bias": True})
    assert "\n" not in str(info.value)
    with pytest.raises(SpecError, match="attention_bias: 'qkv' is not modelled with mla"):
        dataclasses.replace(load_model("deepseek-v3"), attention_bias="qkv")


def test_deepseek_mtp_modules_import_as_mtp_layers() -> None:
    v3 = architecture_from_hf_config(DEEPSEEK_V3)
    assert v3.mtp_layers == 1 == load_model("deepseek-v3").mtp_layers
    assert architecture_from_hf_config(DEEPSEEK_V2).mtp_layers == 0


def test_inactive_windows_and_zero_mtp_import() -> None:
    qwen = {**LLAMA3_8B, "model_type": "qwen2", "sliding_window": 4096}
    assert architecture_from_hf_config({**qwen, "use_sliding_window": False}).num_layers == 32
    assert architecture_from_hf_config({**LLAMA3_8B, "sliding_window": None}).num_layers == 32
    assert architecture_from_hf_config({**LLAMA3_8B, "num_nextn_predict_layers": 0})


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", "/x/hf")
    assert hf_cache.hub_cache_dir() == Path("/x/hf/hub")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mlp_only_layers": 5}, "mlp_only_layers"),
        ({"mlp_only_layers": ["0"]}, "mlp_only_layers"),
        ({"num_experts": 10**9}, "num_experts"),
    ],
)
def test_bad_moe_config_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        architecture_from_hf_config({**QWEN3_30B_A3B, **change})


def test_a_byte_order_mark_is_read_and_a_huge_number_is_named(tmp_path: Path) -> None:
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(LLAMA3_8B).encode())
    assert architecture_from_hf_config(bom).num_layers == 32
    big = tmp_path / "big.json"
    big.write_text('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}")
    with pytest.raises(SpecError, match=r"big\.json: holds a number of more than \d+ digits"):
        architecture_from_hf_config(big)
